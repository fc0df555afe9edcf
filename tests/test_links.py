"""Links that open the source at the first matched word (floor of its start)."""

from __future__ import annotations

from pathlib import Path

from confindex.formats.links import human, link
from confindex.store.transcript import Recording


def test_youtube_short_link_floors_seconds() -> None:
    rec = Recording(
        id="r1",
        title="t",
        source="https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=x",
        kind="youtube",
        extractor="youtube",
        extractor_id="dQw4w9WgXcQ",
    )
    assert link(rec, 754.99) == "https://youtu.be/dQw4w9WgXcQ?t=754"
    assert link(rec, 0.2) == "https://youtu.be/dQw4w9WgXcQ?t=0"
    # Recognised by extractor too (kind may be "url" for a playlist entry).
    rec2 = Recording(
        id="r2", title="t", source="x", kind="url", extractor="youtube:tab", extractor_id="abc"
    )
    assert link(rec2, 61.0) == "https://youtu.be/abc?t=61"


def test_other_urls_get_a_media_fragment() -> None:
    rec = Recording(
        id="r",
        title="t",
        source="https://cdn.example.org/talk.mp4",
        kind="url",
        webpage_url="https://example.org/talks/42#comments",
    )
    assert link(rec, 12.7) == "https://example.org/talks/42#t=12"
    rec = Recording(id="r", title="t", source="http://127.0.0.1:8000/a/talk.mp4?x=1", kind="url")
    assert link(rec, 3599.9) == "http://127.0.0.1:8000/a/talk.mp4?x=1#t=3599"
    assert human(rec, 3599.9) == "http://127.0.0.1:8000/a/talk.mp4?x=1#t=3599 [00:59:59]"


def test_local_files(tmp_path: Path) -> None:
    media = tmp_path / "my talks" / "panel é.mp4"
    rec = Recording(id="r", title="t", source=str(media), kind="file")
    assert link(rec, 754.4) == media.as_uri() + "#t=754"
    assert link(rec, 754.4).startswith("file:///") and "%20" in link(rec, 1)
    assert human(rec, 754.4) == f"{media} [00:12:34]"
    rec = Recording(id="r", title="t", source=media.as_uri(), kind="file")
    assert link(rec, 5) == media.as_uri() + "#t=5"
