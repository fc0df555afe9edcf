"""Small things a user reads (issue 31): counts in the singular, progress labels that keep
what identifies a recording, hit headers that keep channel and date at 80 columns."""

from __future__ import annotations

from conftest import run
from servekit import hostile_transcript, panel_transcript

from confindex.cli.output import plural
from confindex.cli.progress import short
from confindex.store.transcript import save
from confindex.store.workspace import Workspace


def test_counts_say_1_turn_not_1_turns(tmp_path) -> None:
    assert (plural(1, "recording"), plural(2, "recording")) == ("1 recording", "2 recordings")
    ws = Workspace(tmp_path / "ws").ensure()
    save(ws, hostile_transcript())  # one turn
    r = run("index", "--rebuild", ws=ws)
    assert r.exit_code == 0 and r.stdout.startswith("rebuilt the index: 1 turn in ")


def test_progress_labels_keep_ids_whole_and_paths_their_file_name() -> None:
    assert short("panel-2d1475d2fc") == "panel-2d1475d2fc"
    path = "/home/user/recordings/2024/conference/day-two/session-3-keynote.mp4"
    assert short(path) == "…" + path[-39:] and short(path).endswith("session-3-keynote.mp4")
    assert len(short("x" * 60)) == 40


def test_hit_header_keeps_channel_and_date_at_80_columns(tmp_path) -> None:
    ws = Workspace(tmp_path / "ws").ensure()
    save(ws, panel_transcript())
    assert run("index", ws=ws).exit_code == 0
    r = run("search", "handshake", ws=ws)
    head = next(x for x in r.stdout.splitlines() if x.startswith(" 1. "))
    assert len(head) <= 80
    assert head.endswith(" · confindex samples · 2024-05-01"), head
