"""Expanding fetch inputs: batch files, folders, playlists with filters (no model)."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import LoopbackServer

from confindex.errors import InputError
from confindex.run.inputs import (
    Filters,
    dedupe,
    entry_date,
    expand,
    normalize_date,
    read_batch_file,
)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "site"
    root.mkdir()
    handler = functools.partial(
        type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}),
        directory=str(root),
    )
    server = LoopbackServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def touch(p: Path, data: bytes = b"x") -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_batch_file_comments_blank_lines_and_relative_paths(tmp_path: Path) -> None:
    talk = touch(tmp_path / "lists" / "talk.mp3")
    batch = tmp_path / "lists" / "urls.txt"
    batch.write_text(
        "# conference 2024\n\nhttps://example.org/a.mp4\n  talk.mp3  \n; old comment\n"
        "https://example.org/a.mp4\n",
        encoding="utf-8",
    )
    lines = read_batch_file(str(batch))
    assert lines == ["https://example.org/a.mp4", str(talk), "https://example.org/a.mp4"]
    got = expand([], batch_files=[str(batch)])
    assert [i.key for i in got] == ["https://example.org/a.mp4", str(talk.resolve())]
    assert got[0].kind == "url" and got[0].recording_id and got[1].kind == "file"


def test_missing_batch_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read batch file"):
        expand([], batch_files=[str(tmp_path / "nope.txt")])


def test_directory_recursive_by_extension_skipping_hidden_and_workspace(tmp_path: Path) -> None:
    d = tmp_path / "rec"
    a = touch(d / "day1" / "a.MP4")
    b = touch(d / "b.flac")
    touch(d / "notes.txt")
    touch(d / ".hidden" / "c.mp3")
    touch(d / "ws" / "media" / "old.ogg")
    got = expand([str(d)], exclude=[d / "ws" / "media"])
    assert [i.key for i in got] == [str(b.resolve()), str(a.resolve())]
    assert all(i.parent == str(d.resolve()) for i in got)


def test_missing_file_becomes_a_failed_item_not_an_exception(tmp_path: Path) -> None:
    ok = touch(tmp_path / "ok.wav")
    got = expand([str(tmp_path / "gone.mp4"), str(ok)])
    assert got[0].error and "no such file" in got[0].error
    assert got[1].error is None


def test_mixed_inputs_are_deduplicated_in_order(tmp_path: Path) -> None:
    f = touch(tmp_path / "x.ogg")
    url = "https://example.org/media/talk.mp4"
    got = expand([url, str(f), str(tmp_path), url, f"file://{f}"])
    assert [i.key for i in got] == [url, str(f.resolve())]


def test_dedupe_by_recording_id() -> None:
    from confindex.run.inputs import WorkItem

    got = dedupe(
        [
            WorkItem("u1", "u1", "url", recording_id="r"),
            WorkItem("u2", "u2", "url", recording_id="r"),
        ]
    )
    assert [i.key for i in got] == ["u1"]


def test_dates_and_filters() -> None:
    assert normalize_date("2024-03-05") == "20240305"
    assert normalize_date("20240305") == "20240305"
    assert len(normalize_date("today-1week")) == 8
    with pytest.raises(InputError):
        normalize_date("20241399")
    f = Filters(match_title="keynote|panel", date_after="2024-01-01", date_before="20241231")
    assert f.title_ok("Opening KEYNOTE") and not f.title_ok("Lunch")
    assert f.date_ok("20240601") and not f.date_ok("20231231") and not f.date_ok("20250101")
    assert f.date_ok(None)  # unknown dates are kept
    assert entry_date({"upload_date": "20240102"}) == "20240102"
    assert entry_date({"timestamp": 1704153600}) == "20240102"
    assert entry_date({}) is None
    with pytest.raises(InputError):
        Filters(match_title="(")


def test_playlist_page_is_expanded_with_filters(served: tuple[str, Path]) -> None:
    """yt-dlp's generic extractor turns a page of <audio> tags into a playlist."""
    base, root = served
    for name in ("keynote.ogg", "panel.mp3", "lunch.mp3"):
        touch(root / name)
    (root / "day1.html").write_text(
        "<html><body>"
        + "".join(f'<audio src="{n}"></audio>' for n in ("keynote.ogg", "panel.mp3", "lunch.mp3"))
        + "</body></html>"
    )
    page = f"{base}/day1.html"
    got = expand([page])
    assert [i.key for i in got] == [f"{base}/keynote.ogg", f"{base}/panel.mp3", f"{base}/lunch.mp3"]
    assert all(i.parent == page and i.recording_id for i in got)
    assert [i.key for i in expand([page], filters=Filters(match_title="keynote|lunch"))] == [
        f"{base}/keynote.ogg",
        f"{base}/lunch.mp3",
    ]
    assert len(expand([page], filters=Filters(max_recordings=2))) == 2


def test_unreachable_playlist_is_a_failed_item(served: tuple[str, Path]) -> None:
    base, _ = served
    got = expand([f"{base}/missing-page"])
    assert len(got) == 1 and got[0].error and "404" in got[0].error
