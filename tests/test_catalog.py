"""Archive management from the real CLI (issue 15): list, rm, index noticing added/changed/
deleted transcripts, global options before the command, title tokens, fixed-width output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import run
from test_index_search import EN, FR, RU, make

from confindex.search import index
from confindex.store.ledger import Ledger, NewItem
from confindex.store.transcript import save
from confindex.store.workspace import Workspace


@pytest.fixture
def arch(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "ws").ensure()
    for t in (FR, EN, RU):
        save(ws, t)
    assert run("index", ws=ws).exit_code == 0
    return ws


def hits(ws: Workspace, q: str) -> list[str]:
    r = run("search", q, "--json", ws=ws)
    assert r.exit_code == 0, r.output
    return [h["recording_id"] for h in json.loads(r.stdout)["hits"]]


def test_a_transcript_deleted_by_hand_disappears_after_index(arch):
    assert "enpanel" in hits(arch, "budget")
    arch.transcript_path("enpanel").unlink()
    r = run("index", ws=arch)
    assert r.exit_code == 0 and "1 removed" in r.stdout, r.output
    assert hits(arch, "budget") == []
    s = json.loads(run("stats", "--json", ws=arch).stdout)
    assert s["recordings"] == s["transcripts"] == 2
    assert s["audio_seconds"] == round(FR.duration + RU.duration, 1)  # 78.4 s: "0.02" hours
    shown = run("stats", ws=arch).stdout
    assert "\nhours       0.0 (00:01:18 of audio)\n" in shown, shown
    assert not any(line.endswith(" ") for line in shown.splitlines()), shown  # no padding
    assert "up to date" in run("index", ws=arch).stdout
    arch.transcript_path("rupanel").unlink()  # --json says the same for scripts
    r = run("index", "--json", ws=arch)
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert (got["removed"], got["added"], got["skipped"]) == (["rupanel"], [], [])


def test_index_notices_added_and_changed_transcripts(arch):
    save(arch, make("new1", "Fresh talk", [("SPEAKER_00", "Quantum gardening is here.", None)]))
    changed = make("enpanel", "Space policy roundtable", [("SPEAKER_00", "Lunar tomatoes.", None)])
    save(arch, changed)
    os.utime(arch.transcript_path("enpanel"), ns=(1, 10**18))  # a different mtime for sure
    r = run("index", ws=arch)
    assert "1 added" in r.stdout and "1 changed" in r.stdout, r.output
    assert hits(arch, "gardening") == ["new1"]
    assert hits(arch, "tomatoes") == ["enpanel"]
    assert hits(arch, "budget") == []


def test_rm_removes_a_recording_everywhere(arch):
    from confindex.store.store import Store

    Store(arch).write_exports(EN)
    # analysis-tool exports beside it
    Store(arch).write_exports(EN, formats=["eaf", "maxqda", "docx"])
    media = arch.media / "enpanel.opus"
    media.write_bytes(b"x")
    t = make("enpanel", EN.recording.title, [("SPEAKER_00", "Budget talks resume.", None)])
    t.recording.media_path = "media/enpanel.opus"
    save(arch, t)
    from confindex.store.publish import history_dir

    (history_dir(arch, "enpanel")).mkdir(parents=True)  # an earlier version, kept for undo
    (history_dir(arch, "enpanel") / "20261125T000000Z.json").write_text("{}")
    run("index", ws=arch)
    with Ledger.of(arch) as led:
        led.add([NewItem(key="https://x/enpanel", source="https://x/enpanel", kind="url",
                         recording_id="enpanel")])  # fmt: skip
    assert hits(arch, "budget") == ["enpanel"]

    r = run("rm", "enpanel", "--media", ws=arch)
    assert r.exit_code == 0, r.output
    assert "removed enpanel" in r.stdout
    assert not list(arch.transcripts.glob("enpanel.*"))  # transcript and every export
    assert not history_dir(arch, "enpanel").exists()
    assert arch.transcript_path("frpanel").exists()
    assert not media.exists()
    assert hits(arch, "budget") == []
    assert "enpanel" not in index.load_recordings(arch)
    with Ledger.of(arch) as led:
        assert led.by_recording_id("enpanel") == []
    assert [e["id"] for e in json.loads(run("list", "--json", ws=arch).stdout)["recordings"]] == [
        "frpanel",
        "rupanel",
    ]
    # unknown ids: one line, exit non-zero, nothing removed
    bad = run("rm", "frpanel", "nope", ws=arch)
    assert bad.exit_code != 0 and "nope" in bad.stderr and len(bad.stderr.splitlines()) == 1
    assert arch.transcript_path("frpanel").exists()


def test_list_shows_and_filters_recordings(arch):
    r = run("list", ws=arch)
    assert r.exit_code == 0, r.output
    for word in ("frpanel", "Diplomatie", "2023-11-20", "Marie", "fr"):
        assert word in r.stdout
    assert all(len(line) <= 80 for line in r.stdout.splitlines())
    only = json.loads(run("list", "--speaker", "marie", "--json", ws=arch).stdout)
    assert [e["id"] for e in only["recordings"]] == ["frpanel"]
    assert [e["id"] for e in json.loads(run("list", "--lang", "ru", "--json", ws=arch).stdout)[
        "recordings"]] == ["rupanel"]  # fmt: skip
    since = json.loads(run("list", "--since", "2023-10", "--json", ws=arch).stdout)
    assert [e["id"] for e in since["recordings"]] == ["frpanel", "enpanel"]
    lines = run("list", "--jsonl", ws=arch).stdout.splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["frpanel", "enpanel", "rupanel"]


@pytest.mark.parametrize("columns", [50, 80, 100, 140])
def test_list_never_loses_a_column_at_any_width(arch, monkeypatch, columns):
    """A table when it fits, else a block per recording: every id whole on one line, every
    language, speaker and title word shown, no line wider than the terminal (rich's own table
    once dropped whole columns for a long id and cut "en, fr, la" to "en, fr,")."""
    title = "Space diplomacy: a very long panel title that goes on and on about orbits"
    speakers = {"SPEAKER_00": "Jean-Loup Chrétien", "SPEAKER_01": "Maya Brooks"}
    turns = [("SPEAKER_00", "Bonjour.", "fr"), ("SPEAKER_01", "Hello.", "en"),
             ("SPEAKER_00", "Salve.", "la")]  # fmt: skip
    save(arch, make("youtube-u2SCITorY2A", title, turns, speakers=speakers))
    assert run("index", ws=arch).exit_code == 0
    monkeypatch.setenv("COLUMNS", str(columns))
    out = run("--color", "never", "list", ws=arch).stdout
    lines = out.splitlines()
    assert all(len(x) <= columns for x in lines), out
    assert any(x.startswith("youtube-u2SCITorY2A ") for x in lines), out
    assert "en, fr, la" in " ".join(out.split()), out  # whole, or wrapped at a space
    words = out.replace(",", " ").split()
    for said in (title, "Jean-Loup Chrétien", "Maya Brooks", "Космическая политика"):
        assert all(w in words for w in said.replace(",", " ").split()), (said, out)
    assert lines[-1] == "4 recordings, " + lines[-1].split(", ", 1)[1]
    assert lines[-1].endswith(" of audio")


def test_global_options_before_the_command(arch):
    from click.testing import CliRunner

    from confindex.cli import cli

    r = CliRunner().invoke(cli, ["-w", str(arch.root), "--json", "search", "budget"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["hits"][0]["recording_id"] == "enpanel"
    r = CliRunner().invoke(cli, ["--workspace", str(arch.root), "-v", "list"])
    assert r.exit_code == 0 and "enpanel" in r.stdout
    # -v says what a search did: the query as read (`-hard` unquoted is NOT hard), the count
    r = run("-v", "search", "diplomacy", "-hard", ws=arch)
    assert r.exit_code == 0, r.output
    assert "info: search 'diplomacy NOT hard' read as " in r.stderr, r.stderr
    assert ": 1 match(es), 1 shown, in " in r.stderr, r.stderr


def test_title_parts_are_searchable(tmp_path):
    ws = Workspace(tmp_path / "ws").ensure()
    save(ws, make("pyannote_sample", "pyannote_sample", [("SPEAKER_00", "Hello Yankees.", None)]))
    save(ws, make("cam", "SpaceDiplomacy2024", [("SPEAKER_00", "Hello orbit.", None)]))
    run("index", ws=ws)
    assert hits(ws, "title:pyannote hello") == ["pyannote_sample"]
    assert hits(ws, "title:pyannote_sample hello") == ["pyannote_sample"]
    assert hits(ws, "title:diplomacy hello") == ["cam"]
    save(ws, make("doklad", "Доклад о космосе_part1", [("SPEAKER_00", "Hello moon.", None)]))
    run("index", ws=ws)
    for q in ("title:part1", "title:part", "title:космосе", "title:космосе_part1"):
        assert hits(ws, f"{q} hello") == ["doklad"], q  # `part1` once matched nothing


def test_no_color_and_fixed_width(arch, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("NO_COLOR", "1")
    # a bulk run's ledger with a long URL that failed with a long reason (status once printed
    # 136–222 columns per line)
    url = "https://conference.example.org/archive/2024/" + "very-long-session-name-" * 5 + "x.mp4"
    why = "HTTP Error 503: Service Unavailable (the server said: " + "try again later " * 6 + ")"
    with Ledger.of(arch) as led:
        led.add([NewItem(key=url, source=url, kind="url"), NewItem(key="q", source="q.mp4",
                                                                   kind="file")])  # fmt: skip
        assert led.claim_next().key == url
        led.fail(url, why, "download")
    shown = run("status", ws=arch).stdout
    assert "1 queued" in shown and "1 failed" in shown, shown
    assert " ".join(why.split()) in " ".join(shown.split())  # whole reason, wrapped not cut
    item = shown[shown.index("  failed (download") :].splitlines()
    assert len(item) > 2 and all(x.startswith("    ") for x in item[1:]), shown  # hanging indent
    for args in (["stats"], ["speakers", "--all"], ["speakers", "frpanel"], ["status"], ["list"]):
        r = run(*args, ws=arch)
        assert r.exit_code == 0, (args, r.output)
        assert r.stdout.strip(), args
        assert "\x1b" not in r.output
        for line in r.output.splitlines():
            assert len(line) <= 80, (args, line)
    forced = run("--color", "always", "list", ws=arch)
    assert "\x1b[" in forced.stdout


def test_speakers_of_a_recording_one_line_each_with_a_long_name(arch, monkeypatch):
    """A name with title and affiliation is cut with "…" so each speaker stays one line that
    fits the terminal (it once wrapped the line in two); --json keeps it whole."""
    long = "Prof. Dr. Jean-Loup Chrétien, Centre national d'études spatiales, Toulouse"
    speakers = {"SPEAKER_00": long, "SPEAKER_01": "Maya Brooks"}
    turns = [("SPEAKER_00", "Bonjour à toutes et à tous.", "fr"),
             ("SPEAKER_01", "Hello and welcome everyone.", "en")]  # fmt: skip
    save(arch, make("longnames", "Panel", turns, speakers=speakers))
    monkeypatch.setenv("COLUMNS", "72")
    out = run("--color", "never", "speakers", "longnames", ws=arch).stdout
    lines = out.splitlines()
    assert len(lines) == 3 and all(len(x) <= 72 for x in lines), out  # title + one per speaker
    assert lines[1].startswith("SPEAKER_00  Prof. Dr. Jean-Loup Chr…  0"), out  # 72 // 3 = 24
    assert "  1 turn  " in lines[1] and "Maya Brooks" in lines[2], out  # "1 turn", not "1 turns"
    got = json.loads(run("speakers", "longnames", "--json", ws=arch).stdout)
    assert [s["name"] for s in got["speakers"]] == [long, "Maya Brooks"]


def test_unquoted_minus_word_jsonl_and_around_as_a_time(arch):
    both = json.loads(run("search", "diplomacy", "--json", ws=arch).stdout)["hits"]
    assert len(both) == 2
    r = run("search", "diplomacy", "-hard", "--json", ws=arch)  # `-hard`: NOT hard, unquoted
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert got["query"] == "diplomacy NOT hard" and len(got["hits"]) == 1
    assert "Space diplomacy matters" in got["hits"][0]["snippet"]
    lines = run("search", "diplomacy", "--jsonl", ws=arch).stdout.splitlines()
    assert [json.loads(x)["recording_id"] for x in lines] == [h["recording_id"] for h in both]
    assert run("search", "diplomacy", "--format", "jsonl", ws=arch).stdout.splitlines() == lines
    # glued short options keep their meaning: -n1 is the limit, not `NOT n1`
    assert len(json.loads(run("search", "diplomacy", "-n1", "--json", ws=arch).stdout)["hits"]) == 1
    near = run("show", "enpanel", "--at", "0:30", "--around", "10s", "--json", ws=arch)
    wide = run("show", "enpanel", "--at", "0:30", "--around", "1m", "--json", ws=arch)
    assert near.exit_code == wide.exit_code == 0, near.output + wide.output
    assert len(json.loads(near.stdout)["turns"]) < len(json.loads(wide.stdout)["turns"])


def test_export_to_a_new_folder_and_config_defaults(arch, tmp_path):
    out = tmp_path / "subs" / "fr"
    r = run("export", "frpanel", "--format", "srt", "-o", f"{out}/", ws=arch)
    assert r.exit_code == 0, r.output
    assert (out / "frpanel.srt").read_text(encoding="utf-8").startswith("1\n")
    (arch.root / "confindex.toml").write_text(
        "[search]\nlimit = 1\n[subtitles]\nmax_line_width = 26\nmax_line_count = 1\n"
    )
    assert len(json.loads(run("search", "diplomacy", "--json", ws=arch).stdout)["hits"]) == 1
    assert len(json.loads(run("search", "diplomacy", "-n", "5", "--json", ws=arch).stdout)[
        "hits"]) == 2  # fmt: skip
    srt = run("export", "frpanel", "--format", "srt", ws=arch).stdout
    texts = [b.split("\n")[2:] for b in srt.strip().split("\n\n")]
    assert all(len(t) == 1 and len(t[0]) <= 26 for t in texts), srt
    (arch.root / "confindex.toml").write_text("[search\nlimit = 1\n")
    bad = run("search", "diplomacy", ws=arch)
    assert bad.exit_code != 0 and "confindex.toml" in bad.stderr and "TOML" in bad.stderr


def test_option_defaults_precedence(arch, tmp_path, monkeypatch):
    """Command line > CONFINDEX_<COMMAND>_<OPTION> > the workspace's confindex.toml > the user
    config file (platformdirs' config dir, or the file $CONFINDEX_CONFIG names)."""

    def limit(*args: str) -> int:
        r = run("search", "lang:fr OR lang:en OR lang:ru", "--json", *args, ws=arch)
        assert r.exit_code == 0, r.output
        return len(json.loads(r.stdout)["hits"])

    monkeypatch.delenv("CONFINDEX_SEARCH_LIMIT", raising=False)
    monkeypatch.delenv("CONFINDEX_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert limit() == 10  # the built-in default (10 turns match)
    user = tmp_path / "xdg" / "confindex" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text("[search]\nlimit = 5\n")
    assert limit() == 5
    other = tmp_path / "elsewhere.toml"
    other.write_text("[search]\nlimit = 6\n")
    monkeypatch.setenv("CONFINDEX_CONFIG", str(other))
    assert limit() == 6
    (arch.root / "confindex.toml").write_text("[search]\nlimit = 3\n")
    assert limit() == 3
    monkeypatch.setenv("CONFINDEX_SEARCH_LIMIT", "2")
    assert limit() == 2
    assert limit("--limit", "4") == 4


def test_search_and_show_follow_colour_and_width(arch, monkeypatch):
    monkeypatch.setenv("COLUMNS", "50")
    for args in (["search", "diplomatie", "-C", "1", "--cite"], ["show", "frpanel"]):
        r = run(*args, ws=arch)
        assert r.exit_code == 0, r.output
        assert "\x1b" not in r.stdout
        lines = r.stdout.splitlines()
        assert all(len(ln) <= 50 for ln in lines if "://" not in ln), r.stdout
        links = {"    https://youtu.be/frpanel?t=12", "https://youtu.be/frpanel?t=0"}
        assert links & set(lines), r.stdout  # links whole, never cut
    plain = run("search", "diplomacy", ws=arch).stdout
    assert "Space **diplomacy** matters for every station" in plain  # marked without colour
    coloured = run("--color", "always", "search", "diplomacy", ws=arch).stdout
    assert "\x1b[1;33mdiplomacy\x1b[0m" in coloured and "**" not in coloured
    # the rank, time and speaker are bold, the title is not
    assert "\x1b[1m · \x1b[0mSpace policy" in coloured, coloured
    # --color after the command too, as ls and grep take it; the later one wins
    assert run("search", "diplomacy", "--color", "always", ws=arch).stdout == coloured
    assert run("--color", "always", "search", "diplomacy", "--color", "never", ws=arch).stdout == (
        plain
    )
    assert "\x1b[" in run("list", "--color", "always", ws=arch).stdout
    assert "\x1b[" in run("show", "frpanel", "--color", "always", ws=arch).stdout


def on_a_terminal(
    argv: list[str], env: dict[str, str], columns: int, *, stream: str = "stdout"
) -> tuple[str, str]:
    """Run the installed `confindex` with `stream` (stdout or stderr) on a pseudo-terminal
    `columns` wide and the other one on a pipe; returns (terminal text, piped text)."""
    import fcntl
    import pty
    import struct
    import subprocess
    import sys
    import termios
    import threading

    exe = Path(sys.executable).parent / "confindex"
    if not exe.exists():
        pytest.skip("the confindex script is not installed in this environment")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS")} | env
    ends = {"stdout": slave, "stderr": subprocess.PIPE}
    if stream == "stderr":
        ends = {"stdout": subprocess.PIPE, "stderr": slave}
    p = subprocess.Popen([exe, *argv], **ends, env=env)
    os.close(slave)
    piped: list[bytes] = []
    pipe = p.stderr if stream == "stdout" else p.stdout
    reader = threading.Thread(target=lambda: piped.append(pipe.read()))  # no pipe deadlock
    reader.start()
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    p.wait(timeout=300)
    reader.join()
    os.close(master)
    other = b"".join(piped).decode()
    assert p.returncode == 0, other if stream == "stdout" else out.decode()
    return out.decode().replace("\r\n", "\n"), other


def test_no_color_on_a_real_terminal(arch):
    """What a user sees in a terminal: matches in colour, unless NO_COLOR is set (then bold,
    as no-color.org asks), and lines that fit the terminal's width."""
    argv = ["-w", str(arch.root), "search", "diplomatie", "-C", "1"]
    env = {"TERM": "xterm-256color"}
    coloured, _ = on_a_terminal(argv, env, 60)
    assert "\x1b[1;33mdiplomatie\x1b[0m" in coloured
    plain, _ = on_a_terminal(argv, env | {"NO_COLOR": "1"}, 60)
    assert "diplomatie" in plain and "33m" not in plain and "34m" not in plain
    assert "\x1b[1mdiplomatie\x1b[0m" in plain  # still visible: bold, without colour
    import re

    for ln in re.sub(r"\x1b\[[0-9;]*m", "", plain).splitlines():
        assert len(ln) <= 60, ln
