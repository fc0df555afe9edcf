"""Citations: exact strings for APA, Chicago and BibTeX, quotes from the word timings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from confindex.errors import InputError
from confindex.formats.cite import cite
from confindex.store.transcript import Provenance, Recording, Transcript, Turn, Word


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
    # An unnamed SPEAKER_01 is not an author: the channel is (APA for videos); no date: n.d.
    c = cite(transcript(upload_date=None), 770.5)
    assert c.speaker is None and c.speaker_label == "SPEAKER_01"
    assert c.render("apa") == (
        "ESA. (n.d.). Space Diplomacy & Europe [Video]. "
        'https://youtu.be/vid1?t=770 [00:12:50–00:12:51]: "Merci beaucoup."'
    )
    # No author at all: the title takes the author's place.
    assert (
        cite(transcript(channel=None), 770.5)
        .render("apa")
        .startswith("Space Diplomacy & Europe [Video]. (2023, October 5). https://")
    )
    # An audio file is not a video.
    audio = transcript(kind="url", extractor="generic", source="https://radio.example/ep1.mp3")
    assert "[Audio]" in cite(audio, 754.5).render("apa")
    assert ", audio, " in cite(audio, 754.5).render("chicago")


def test_chicago() -> None:
    assert cite(transcript(), 754.5).render("chicago") == (
        'Marie Dupont, "Space Diplomacy & Europe," ESA, October 5, 2023, video, '
        '00:12:32–00:12:36, https://youtu.be/vid1?t=752. "Space diplomacy is about trust."'
    )


def test_bibtex() -> None:
    assert cite(transcript(), 754.5).render("bibtex") == (
        "@misc{dupont2023space_2bd4_752,\n"
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
    # An unnamed speaker: the channel is a corporate-style author, braced.
    assert "  author = {{ESA}},\n" in cite(transcript(), 770.5).render("bibtex")
    assert "author" not in cite(transcript(channel=None), 770.5).render("bibtex")


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


def test_moment_outside_the_recording_is_an_error() -> None:
    t = transcript()  # 800 s long
    assert cite(t, 800.0).quote == "Merci beaucoup."
    with pytest.raises(InputError, match="past the end of vid1"):
        cite(t, 802.0)
    with pytest.raises(InputError, match="negative time"):
        cite(t, -1.0)


def test_five_moments_in_one_bib_ris_and_csl_import() -> None:
    import bibtexparser
    import jsonschema
    import rispy

    t = transcript()
    # Four sentences of one recording, and the same second of another with the same author,
    # year and title (a re-upload): five moments, five keys.
    moments = [cite(t, at) for at in (750.5, 752.5, 757.5, 770.5)]
    moments.append(cite(transcript(id="vid2", extractor_id="vid2"), 752.5))
    bib = "\n\n".join(c.render("bibtex") for c in moments)  # five `cite >> refs.bib`
    lib = bibtexparser.parse_string(bib)
    assert not lib.failed_blocks  # a DuplicateBlockKeyBlock would be a failed block
    assert len({e.key for e in lib.entries}) == 5
    assert lib.entries[0]["author"] == "Marie Dupont"

    refs = rispy.loads("\n".join(c.render("ris") for c in moments))
    assert len(refs) == 5 and refs[0]["type_of_reference"] == "VIDEO"
    assert refs[0]["authors"] == ["Dupont, Marie"] and refs[3]["authors"] == ["ESA"]
    assert refs[0]["urls"] == ["https://youtu.be/vid1?t=750"]
    assert refs[0]["year"] == "2023" and "Welcome everyone." in refs[0]["notes"][0]

    schema = json.loads((Path(__file__).parent / "data/csl/csl-data.json").read_text())
    items = [item for c in moments for item in json.loads(c.render("csl"))]
    jsonschema.validate(items, schema)
    assert items[0]["author"] == [{"family": "Dupont", "given": "Marie"}]
    assert items[0]["issued"] == {"date-parts": [[2023, 10, 5]]}
    assert len({i["id"] for i in items}) == 5


def test_a_channel_of_two_words_is_a_corporate_author() -> None:
    import bibtexparser
    from bibtexparser.middlewares import SeparateCoAuthors, SplitNameParts

    # "Radio France" looks like a first and a last name; as the channel it is one author.
    c = cite(transcript(channel="Radio France"), 770.5)  # unnamed SPEAKER_01
    assert c.key.startswith("radiofrance2023")
    lib = bibtexparser.parse_string(
        c.render("bibtex"), append_middleware=[SeparateCoAuthors(), SplitNameParts()]
    )
    (name,) = lib.entries[0]["author"]
    assert (name.first, name.last) == ([], ["{Radio France}"])
    assert (
        cite(transcript(channel="Radio France"), 754.5)
        .render("bibtex")
        .count("author = {Marie Dupont}")
        == 1
    )  # a named speaker stays a person: Dupont, Marie
