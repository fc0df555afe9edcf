"""Citations: exact strings for APA, Chicago and BibTeX, quotes from the word timings."""

from __future__ import annotations

import pytest

from confindex.cite import cite
from confindex.errors import InputError
from confindex.transcript import Provenance, Recording, Transcript, Turn, Word


def _words(text: str, start: float) -> list[Word]:
    return [Word(start + i, start + i + 0.8, " " + w) for i, w in enumerate(text.split())]


def transcript(**rec_kw) -> Transcript:
    rec = dict(
        id="vid1",
        title="Space Diplomacy & Europe",
        source="https://www.youtube.com/watch?v=vid1",
        kind="youtube",
        extractor="youtube",
        extractor_id="vid1",
        channel="ESA",
        upload_date="2023-10-05",
    )
    rec.update(rec_kw)
    t1 = "Welcome everyone. Space diplomacy is about trust. It takes decades."
    t2 = "Merci beaucoup."
    return Transcript(
        recording=Recording(**rec),
        provenance=Provenance("test"),
        language="en",
        duration=800,
        turns=[
            Turn(0, 750.0, 760.8, "SPEAKER_00", t1, "en", _words(t1, 750.0)),
            Turn(1, 770.0, 771.8, "SPEAKER_01", t2, "fr", _words(t2, 770.0)),
        ],
        speakers={"SPEAKER_00": "Marie Dupont"},
    )


def test_quote_is_the_sentence_holding_the_moment() -> None:
    c = cite(transcript(), 754.5)  # "diplomacy" starts at 754
    assert c.quote == "Space diplomacy is about trust."
    assert (c.start, c.end) == (752.0, 756.8)
    assert c.url == "https://youtu.be/vid1?t=752"
    assert c.speaker == "Marie Dupont"
    assert cite(transcript(), 765.0).quote == "It takes decades."  # in a pause: nearest turn


def test_apa() -> None:
    assert cite(transcript(), 754.5).render("apa") == (
        "Dupont, M. (2023, October 5). Space Diplomacy & Europe [Video]. ESA. "
        'https://youtu.be/vid1?t=752 [00:12:32–00:12:36]: "Space diplomacy is about trust."'
    )
    # An unnamed speaker keeps its label; no date gives n.d.
    c = cite(transcript(upload_date=None), 770.5)
    assert c.render("apa") == (
        "SPEAKER_01. (n.d.). Space Diplomacy & Europe [Video]. ESA. "
        'https://youtu.be/vid1?t=770 [00:12:50–00:12:51]: "Merci beaucoup."'
    )


def test_chicago() -> None:
    assert cite(transcript(), 754.5).render("chicago") == (
        'Marie Dupont, "Space Diplomacy & Europe," ESA, October 5, 2023, video, '
        '00:12:32–00:12:36, https://youtu.be/vid1?t=752. "Space diplomacy is about trust."'
    )


def test_bibtex() -> None:
    assert cite(transcript(), 754.5).render("bibtex") == (
        "@misc{dupont2023space,\n"
        "  author = {Marie Dupont},\n"
        "  title = {Space Diplomacy \\& Europe},\n"
        "  howpublished = {ESA},\n"
        "  year = {2023},\n"
        "  month = oct,\n"
        "  date = {2023-10-05},\n"
        "  url = {https://youtu.be/vid1?t=752},\n"
        "  note = {Video, 00:12:32--00:12:36. Quote: ``Space diplomacy is about trust.''},\n"
        "}"
    )
    # A label is a corporate-style author: braced, underscore escaped.
    assert "  author = {{SPEAKER\\_01}},\n" in cite(transcript(), 770.5).render("bibtex")


def test_local_file_and_errors(tmp_path) -> None:
    media = tmp_path / "panel.mp4"
    c = cite(transcript(kind="file", source=str(media), extractor=None, extractor_id=None), 754.5)
    assert c.url == media.as_uri() + "#t=752"
    with pytest.raises(InputError):
        c.render("mla")
    empty = transcript()
    empty.turns = []
    with pytest.raises(InputError, match="no transcribed speech"):
        cite(empty, 1.0)
