"""Hostile local inputs to `fetch`: special files, hostile names, hostile media (issue 16).

Each case: one `Error:` line, exit 1 or 2, no traceback, never a hang (special files run in a
subprocess with a timeout), nothing half-written, the archive still searchable; at the end a
real good fetch into the same workspace works (slow).
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import numpy as np
import pytest
from conftest import run, shared_file
from harness import QUIET, assert_intact, assert_one_line_error, cli, good_archive, write_wav

from confindex.store.ledger import Ledger
from confindex.store.workspace import Workspace


@pytest.fixture(scope="module")
def adv(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return good_archive(tmp_path_factory.mktemp("adv-inputs") / "ws")


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of hostile files."""
    d = tmp_path_factory.mktemp("hostile")
    os.mkfifo(d / "fifo.mp3")
    (d / "zero.mp3").symlink_to("/dev/zero")
    (d / "null.wav").symlink_to("/dev/null")
    (d / "loop-a.mp3").symlink_to(d / "loop-b.mp3")
    (d / "loop-b.mp3").symlink_to(d / "loop-a.mp3")
    (d / "dangling.mp3").symlink_to(d / "gone.mp3")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "sock.mp3"))  # a socket file (closed: it stays on disk)
    sock.close()
    (d / "empty.mp3").write_bytes(b"")
    (d / "random.mp3").write_bytes(os.urandom(20_000))
    (d / "text.wav").write_text("hello, I am not audio\n")
    (d / "page.mp4").write_text("<html><body>404</body></html>\n")
    (d / "json.flac").write_text('{"not": "media"}\n')
    (d / "zeros.ogg").write_bytes(bytes(50_000))
    (d / "header-only.wav").write_bytes(write_wav(d / "tmp.wav", np.zeros(0)).read_bytes())
    write_wav(d / "silent.wav", np.zeros(16000 * 3))
    write_wav(d / "tiny-noise.wav", np.full(16000 * 2, 1e-6))
    _video_without_audio(d / "video-no-audio.mp4")
    (d / "truncated-riff.wav").write_bytes(b"RIFF\xff\xff\xff\xffWAVEfmt ")
    (d / "dir.mp3").mkdir()
    return d


def _video_without_audio(path: Path) -> None:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=5)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            img = np.full((48, 64, 3), i * 40, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)


SPECIAL = [
    ("fifo.mp3", "named pipe"),
    ("zero.mp3", "character device"),
    ("null.wav", "character device"),
    ("/dev/zero", "character device"),
    ("/dev/urandom", "character device"),
    ("loop-a.mp3", "symlink loop"),
    ("dangling.mp3", "no such file"),
    ("sock.mp3", "socket"),
    ("gone-entirely.mp3", "no such file"),
    ("b" * 256 + ".mp3", "too long"),
    ("file:///dev/zero", "character device"),
]


@pytest.mark.parametrize(("name", "says"), SPECIAL, ids=[s[0][:30] for s in SPECIAL])
def test_special_files_are_refused_without_hanging(
    adv: Workspace, place: Path, name: str, says: str
) -> None:
    arg = name if name.startswith(("/", "file:")) else str(place / name)
    r = cli("fetch", arg, *QUIET, "-w", str(adv.root), timeout=60)
    line = assert_one_line_error(r)
    assert says in line
    assert "earlier run" not in line  # first sight: say what is wrong
    assert_intact(adv)
    with Ledger.of(adv) as led:  # recorded failed, never left queued (resume would hang)
        assert all(row.stage != "queued" for row in led.rows())


MEDIA = [
    ("empty.mp3", "empty"),
    ("random.mp3", "media file|no audio"),
    ("text.wav", "media file|no audio"),
    ("page.mp4", "media file|no audio"),
    ("json.flac", "media file|no audio"),
    ("zeros.ogg", "media file|no audio"),
    ("header-only.wav", "audio"),
    ("silent.wav", "silent"),
    ("tiny-noise.wav", "silent"),
    ("video-no-audio.mp4", "no audio track"),
    ("truncated-riff.wav", "media file|no audio"),
]


@pytest.mark.parametrize(("name", "says"), MEDIA, ids=[m[0] for m in MEDIA])
def test_hostile_media_is_a_one_line_error(
    adv: Workspace, place: Path, name: str, says: str
) -> None:
    r = run("fetch", str(place / name), *QUIET, ws=adv)
    assert re.search(says, assert_one_line_error(r))
    assert_intact(adv)


def test_a_truncated_file_is_measured_against_its_header(tmp_path: Path) -> None:
    """A FLAC cut to 40 % of its bytes (its header still says 10 s): decoded as far as it
    goes, and known to be short. (A cut WAV is not: FFmpeg takes its length from the size.)"""
    import av

    from confindex.speech.audio import decode_with_info

    whole = tmp_path / "tone.flac"
    pcm = (0.3 * np.sin(np.arange(16000 * 10) / 5) * 32767).astype(np.int16)[None, :]
    with av.open(str(whole), "w", format="flac") as c:
        stream = c.add_stream("flac", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            c.mux(packet)
    assert not decode_with_info(whole)[1].truncated
    cut = tmp_path / "cut.flac"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.4)])
    samples, info = decode_with_info(cut)
    assert info.container_seconds == 10.0 and info.truncated
    assert 2.0 < info.decoded_seconds == samples.size / 16000 < 5.0
    assert re.fullmatch(
        r"cut\.flac looks truncated: only 00:00:0[2-4] of audio decoded of the 00:00:10 its "
        r"header announces; transcribing what is there",
        info.warning("cut.flac") or "",
    )


@pytest.mark.slow
def test_a_truncated_flac_is_transcribed_as_far_as_it_goes_with_a_warning(
    tmp_path: Path,
) -> None:
    """Half of JFK's FLAC (its header still says 11 s): exit 0, one warning naming the decoded
    length, the first half searchable, the cut recorded in the transcript's provenance."""
    from confindex.store.transcript import load

    data = shared_file("en/jfk.flac").read_bytes()
    half = tmp_path / "jfk-half.flac"
    half.write_bytes(data[: len(data) // 2])
    ws = Workspace(tmp_path / "ws")
    r = run("fetch", str(half), *QUIET, ws=ws)
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and re.search(
        r"jfk-half\.flac looks truncated: only 00:00:05 of audio decoded of the 00:00:11 ", lines[0]
    ), lines
    (rid,) = ws.transcript_ids()
    decode = load(ws, rid).provenance.options["decode"]
    assert decode["truncated"] is True and decode["container_seconds"] == 11.0
    assert 5.0 < decode["decoded_seconds"] < 6.0
    assert '"total": 1' in run("search", "fellow Americans", "--json", ws=ws).stdout
    assert '"total": 0' in run("search", "your country", "--json", ws=ws).stdout  # past the cut


HOSTILE_NAMES = [
    "with space.mp3",
    "it's.mp3",
    'say "hi".mp3',
    "new\nline.mp3",
    "tab\there.mp3",
    "-starts-with-dash.mp3",
    "--long-option-like.mp3",
    "été à Zürich.mp3",
    "日本語の講演.mp3",
    "مرحبا.mp3",
    "emoji 🎤.mp3",
    "\u202eevil\u202c.mp3",
    "\x1b]0;pwned\x07title.mp3",
    "\x1b[31mred.mp3",
    "back\\slash.mp3",
    "$(touch pwned).mp3",
    "`id`.mp3",
    "star*?[glob].mp3",
    "percent%20%00.mp3",
    ";rm -rf ~.mp3",
    "x" * 251 + ".mp3",  # 255 bytes: the longest name a filesystem takes
    "é" * 125 + ".mp3",  # 254 bytes of UTF-8
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=[repr(n)[:24] for n in HOSTILE_NAMES])
def test_hostile_file_names_are_inert(adv: Workspace, place: Path, name: str) -> None:
    """Random bytes under a hostile name: one clean line naming the file, nothing run."""
    path = place / "names" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(os.urandom(5_000))
    r = run("fetch", *QUIET, "-w", str(adv.root), "--", str(path))
    line = assert_one_line_error(r)
    assert re.search("media file|no audio", line)
    assert "\x1b" not in line and "\x07" not in line and "\u202e" not in line
    assert not (Path.cwd() / "pwned").exists()
    assert_intact(adv)


def test_a_leading_dash_without_double_dash_is_a_usage_error(adv: Workspace) -> None:
    r = run("fetch", "-starts-with-dash.mp3", ws=adv)
    assert "No such option" in assert_one_line_error(r, (2,))


BATCH = [
    ("binary", os.urandom(3000) + b"\xff\xfe", "not UTF-8"),
    ("nul", b"http://127.0.0.1:9/a.mp3\x00\n", "not text"),
    ("comments", b"# nothing here\n; nor here\n\n", "nothing to fetch"),
]


@pytest.mark.parametrize(("kind", "content", "says"), BATCH, ids=[b[0] for b in BATCH])
def test_hostile_batch_files(
    adv: Workspace, tmp_path: Path, kind: str, content: bytes, says: str
) -> None:
    batch = tmp_path / f"{kind}.txt"
    batch.write_bytes(content)
    r = run("fetch", "-a", str(batch), *QUIET, ws=adv)
    assert says in assert_one_line_error(r)
    assert_intact(adv)


@pytest.mark.parametrize("name", ["fifo.mp3", "zero.mp3", "dir.mp3", "missing.txt"])
def test_batch_file_that_is_not_a_regular_file(adv: Workspace, place: Path, name: str) -> None:
    r = cli("fetch", "-a", str(place / name), *QUIET, "-w", str(adv.root), timeout=60)
    assert "batch file" in assert_one_line_error(r)


@pytest.mark.parametrize("arg", ["", " ", "\t"])
def test_an_empty_argument_is_not_the_current_folder(
    adv: Workspace, place: Path, arg: str, monkeypatch
) -> None:
    monkeypatch.chdir(place)  # a folder full of media-named files: must not be scanned
    with Ledger.of(adv) as led:
        before = len(led.rows())
    r = run("fetch", arg, *QUIET, ws=adv)
    assert "empty argument" in assert_one_line_error(r, (2,))
    with Ledger.of(adv) as led:
        assert len(led.rows()) == before  # nothing was picked up


def test_a_folder_of_special_files_skips_them(adv: Workspace, place: Path) -> None:
    """Scanning a folder reads regular media files only (FIFOs and devices named .mp3 too)."""
    d = place / "mixed"
    d.mkdir()
    os.mkfifo(d / "pipe.mp3")
    (d / "dev.wav").symlink_to("/dev/zero")
    r = cli("fetch", str(d), *QUIET, "-w", str(adv.root), timeout=60)
    assert "nothing to fetch" in assert_one_line_error(r)


@pytest.mark.slow
def test_a_good_fetch_still_works_after_all_that(adv: Workspace) -> None:
    jfk = shared_file("en/jfk.flac")
    r = run("fetch", str(jfk), *QUIET, "--json", ws=adv)
    assert r.exit_code == 0, r.output
    hits = run("search", "ask not what your country", "--json", ws=adv)
    assert hits.exit_code == 0 and '"recording_id": "jfk-' in hits.stdout
    assert_intact(adv)
