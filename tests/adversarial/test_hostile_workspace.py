"""Issue 30, item by item: hostile files in a workspace, hostile config, hostile inputs and
external waits. Each case: one line, exit 1 or 2 (never 70), no hang (subprocess with a
deadline where a hang is possible), nothing lost (`assert_intact`)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest
from conftest import run, shared_file
from harness import assert_intact, assert_one_line_error, cli, good_archive

from confindex.store.transcript import load_path
from confindex.store.workspace import Workspace


@pytest.fixture
def adv(tmp_path: Path) -> Workspace:
    return good_archive(tmp_path / "ws")


def _good_json(ws: Workspace) -> dict:
    return json.loads(ws.transcript_path("good").read_text(encoding="utf-8"))


# --- H1, E2, E3, M1: hostile files in transcripts/ ----------------------------------------


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _zero(p: Path) -> None:
    p.symlink_to("/dev/zero")


def _deep(p: Path) -> None:
    p.write_text("[" * 100_000 + "]" * 100_000)


def _stray(p: Path) -> None:
    p.write_text('{"a": "x"}')


@pytest.mark.parametrize(
    "make", [_fifo, _zero, _deep, _stray], ids=["fifo", "zero", "deep", "stray"]
)
@pytest.mark.parametrize(
    "args",
    [["list"], ["speakers", "--all"], ["index"], ["show", "good"], ["show", "zzz-nothere"],
     ["search", "brown fox"], ["show", "/nowhere/good.wav"]],
    ids=lambda a: " ".join(a),
)  # fmt: skip
def test_a_hostile_file_in_transcripts_never_hangs_nor_takes_over(adv, make, args) -> None:
    make(adv.transcripts / "h-dangling.json")
    r = cli(*args, "-w", str(adv.root), timeout=60)
    assert r.returncode in (0, 1), r.stderr
    assert "Traceback" not in r.stderr
    if args == ["show", "zzz-nothere"]:
        # M1: the lookup names what was asked for, not the stray file.
        line = assert_one_line_error(r)
        assert "zzz-nothere" in line and "h-dangling" not in line
    elif args in (["show", "good"], ["show", "/nowhere/good.wav"]):
        assert r.returncode == 0 and "brown fox" in r.stdout, r.stderr
    elif args == ["index"]:
        assert "h-dangling" in r.stderr  # named, not hidden
    (adv.transcripts / "h-dangling.json").unlink()
    assert_intact(adv)


# --- H2, E3, E7: hostile config -----------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("fifo", "FIFO"),
        ("zero", "device"),
        (b'[fetch]\nlanguage = "\xff"\n', "not UTF-8"),
        ("[fetch]\nx = " + "[" * 5000 + "]" * 5000 + "\n", "nests too deep"),
        ("[fetch.deeper]\nlanguage = 'fr'\n", "must be a value"),
        ("[search]\nlimit = [[1]]\n", "must be a value"),
        ("# " + "x" * (2 << 20), "too large"),
    ],
    ids=["fifo", "zero", "0xff", "deep", "nested-table", "nested-array", "huge"],
)
@pytest.mark.parametrize("where", ["workspace", "env"])
def test_a_hostile_config_is_one_line(adv, tmp_path: Path, content, says, where) -> None:
    path = adv.root / "confindex.toml" if where == "workspace" else tmp_path / "user.toml"
    if content == "fifo":
        os.mkfifo(path)
    elif content == "zero":
        path.symlink_to("/dev/zero")
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    env = {"CONFINDEX_CONFIG": str(path) if where == "env" else ""}
    r = cli("search", "brown fox", "-w", str(adv.root), timeout=60, env=env)
    line = assert_one_line_error(r)
    assert says in line and str(path) in line, line
    path.unlink()
    assert_intact(adv)


# --- E1: a lone surrogate in a title ------------------------------------------------------


def test_a_lone_surrogate_in_a_title_reads_everywhere(adv) -> None:
    d = _good_json(adv)
    d["recording"]["title"] = "Talk \ud800 about foxes"
    d["speakers"] = {"SPEAKER_00": "Ada \udfff"}
    adv.transcript_path("good").write_bytes(
        json.dumps(d, ensure_ascii=True).encode("ascii")  # valid JSON: "\ud800" escaped
    )
    for args in (
        ["show", "good"], ["index", "--rebuild"], ["search", "brown fox"], ["speakers", "good"],
        ["review", "good"], ["cite", "good", "--at", "1"], ["list", "--json"],
    ):  # fmt: skip
        r = run(*args, ws=adv)
        assert r.exit_code == 0, (args, r.output)
    assert "Talk \ufffd about foxes" in run("show", "good", ws=adv).stdout


# --- D3, D4: a transcript that is not what its name says ----------------------------------


def test_a_copy_under_another_name_does_not_replace_the_original_in_the_index(adv) -> None:
    d = _good_json(adv)
    d["turns"][0]["text"] = "completely different words about elephants"
    for w in d["turns"][0]["words"]:
        w["text"] = " elephants"
    (adv.transcripts / "copy.json").write_text(json.dumps(d))  # recording.id is "good"
    r = run("index", "--rebuild", ws=adv)
    assert r.exit_code == 1 and "copy.json" in r.stderr and "holds recording 'good'" in r.stderr
    assert run("search", "elephants", ws=adv).stdout.strip().startswith("No hits")
    (adv.transcripts / "copy.json").unlink()
    assert_intact(adv)  # "brown fox" still finds good, not the copy's words


def test_an_invalid_id_does_not_stop_the_rebuild(adv) -> None:
    d = _good_json(adv)
    d["recording"]["id"] = "../../../etc/passwd"
    (adv.transcripts / "evil.json").write_text(json.dumps(d))
    r = run("index", "--rebuild", ws=adv)
    assert r.exit_code == 1 and "evil.json" in r.stderr, r.stderr  # named
    (adv.transcripts / "evil.json").unlink()
    assert_intact(adv)


# --- types: what a transcript holds is checked when it is read -----------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("recording", "title"), 42),
        (("turns", 0, "words", 0, "text"), True),
        (("turns", 0, "start"), math.nan),
        (("speakers", "SPEAKER_00"), ["x"]),
        (("duration",), "long"),
    ],
    ids=["int-title", "bool-word", "nan-time", "list-name", "str-duration"],
)
def test_a_transcript_with_wrong_types_is_damaged_not_a_crash(adv, path, value) -> None:
    d = _good_json(adv)
    d["recording"]["id"] = "bad"
    node = d
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    (adv.transcripts / "bad.json").write_text(json.dumps(d, allow_nan=True))
    for args in (["show", "bad"], ["cite", "bad", "--at", "1"], ["speakers", "bad"]):
        line = assert_one_line_error(run(*args, ws=adv))
        assert "bad.json is damaged" in line, line
    (adv.transcripts / "bad.json").unlink()
    assert_intact(adv)


# --- E11, M2: citations ------------------------------------------------------------------------


def test_cite_at_inf_or_nan_is_an_error_and_titles_stay_on_one_line(adv) -> None:
    from confindex import Archive
    from confindex.errors import InputError

    for at in (math.inf, -math.inf, math.nan):
        with pytest.raises(InputError, match="not a moment"):
            Archive(adv.root).cite("good", at)
    d = _good_json(adv)
    d["recording"]["title"] = "Good talk\nFAKE LINE: retracted"
    d["recording"]["channel"] = "Chan\r\nnel"
    d["speakers"] = {"SPEAKER_00": "Ada\nLovelace"}
    adv.transcript_path("good").write_text(json.dumps(d))
    for style in ("apa", "chicago"):
        r = run("cite", "good", "--at", "1", "--style", style, ws=adv)
        assert r.exit_code == 0
        assert len(r.stdout.strip().splitlines()) == 1, r.stdout
        assert "Good talk FAKE LINE" in r.stdout


# --- D1: a rename on a full disk --------------------------------------------------------------


def test_a_rename_that_could_not_be_saved_says_nothing_was_saved(tmp_path: Path) -> None:
    import shutil

    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        ws = good_archive(mnt / "ws")
        before = ws.transcript_path("good").read_bytes()
        with contextlib.suppress(OSError), open(mnt / "filler", "wb") as f:
            while True:  # the disk full, to the last block
                f.write(b"\0" * 4096)
                f.flush()
        r = run("speakers", "good", "rename", "SPEAKER_00", "Grace", ws=ws)
        line = assert_one_line_error(r)
        assert "nothing was saved" in line and "index" not in line, line
        assert ws.transcript_path("good").read_bytes() == before
        history = ws.transcripts / ".history" / "good"
        assert not history.exists() or any(history.iterdir())  # no empty history folder
        (mnt / "filler").unlink()
        assert_intact(ws)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


# --- D7, E4: audio headers --------------------------------------------------------------------


def test_a_cut_wav_warns_and_a_lying_flac_header_allocates_nothing(tmp_path: Path) -> None:
    from faster_whisper.audio import decode_audio

    from confindex.speech.audio import decode_with_info

    jfk = decode_audio(str(shared_file("en/jfk.flac")), sampling_rate=16000)
    full = tmp_path / "full.wav"
    with wave.open(str(full), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((jfk[: int(4.33 * 16000)] * 32767).astype("<i2").tobytes())
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[: 44 + int(1.56 * 32000)])
    _samples, info = decode_with_info(cut)
    assert info.truncated and "looks truncated" in (info.warning("cut.wav") or "")
    assert abs(info.container_seconds - 4.33) < 0.01

    flac = bytearray(shared_file("en/jfk.flac").read_bytes())
    flac[8 + 13] = (flac[8 + 13] & 0xF0) | 0x0F  # STREAMINFO: 2^36 - 1 samples
    flac[8 + 14 : 8 + 18] = b"\xff\xff\xff\xff"
    liar = tmp_path / "liar.flac"
    liar.write_bytes(bytes(flac))
    code = (
        "import resource, sys; from confindex.speech.audio import decode_with_info; "
        f"s, i = decode_with_info({str(liar)!r}); "
        "print(len(s), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    n, rss_kib = map(int, out.stdout.split())
    assert n == len(jfk) and rss_kib < 1_000_000, out  # < 1 GB (it asked for 188 GiB)


# --- E5, E6, M4: inputs -----------------------------------------------------------------------


def test_hostile_input_names_are_one_line(adv, tmp_path: Path) -> None:
    bad = Path(os.fsdecode(bytes(tmp_path) + b"/talk\xff.wav"))
    bad.write_bytes(b"RIFF")
    r = cli("fetch", str(bad), "-w", str(adv.root))
    assert "not UTF-8" in assert_one_line_error(r)
    r = cli("fetch", "http://exa\u202emple.org/x.mp3", "-w", str(adv.root))
    assert "host name cannot hold" in assert_one_line_error(r)
    r = cli("fetch", "http://example.org/" + "a" * 100_000 + ".mp3", "-w", str(adv.root))
    line = assert_one_line_error(r)
    assert "URL too long" in line and len(line) < 300
    assert load_path(adv.transcript_path("good")).text
    assert_intact(adv)


# --- D5: exports left stale by a crash ---------------------------------------------------------


def test_index_rewrites_exports_older_than_their_transcript(adv) -> None:
    """The state kill -9 during `speakers rename` left (1 of 15 seeded kills): the transcript
    has the new name, the .vtt the old one. `index` writes such exports again."""
    from confindex.store.store import Store
    from confindex.store.transcript import save

    t = load_path(adv.transcript_path("good"))
    Store(adv).write_exports(t, formats=["vtt", "srt", "txt"])
    vtt = adv.transcripts / "good.vtt"
    assert "<v Ada>" in vtt.read_text(encoding="utf-8")
    t.speakers["SPEAKER_00"] = "Grace Hopper"
    save(adv, t)  # ... and the process was killed here, before the exports
    earlier = adv.transcript_path("good").stat().st_mtime - 5  # the exports: before it
    for ext in ("vtt", "srt", "txt"):
        os.utime(adv.transcripts / f"good.{ext}", (earlier, earlier))
    r = run("index", ws=adv)
    assert r.exit_code == 0 and "rewrote 3 export(s)" in r.stdout, r.output
    assert "<v Grace Hopper>" in vtt.read_text(encoding="utf-8")
    assert "Grace Hopper" in (adv.transcripts / "good.txt").read_text(encoding="utf-8")
    r = run("index", ws=adv)
    assert "rewrote" not in r.stdout  # done once
