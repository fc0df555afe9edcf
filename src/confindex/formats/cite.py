"""Citations of a moment in a recording: APA, Chicago, BibTeX, RIS and CSL-JSON (pure).

The quote is the exact words of the transcript: the sentence (within the speaker's turn) that
holds the word spoken at `at`, timed by the word timings. Reference managers (Zotero,
Mendeley, JabRef) import the BibTeX, RIS and CSL-JSON forms: keys are unique per moment, and
only a named speaker is an author (an unnamed SPEAKER_00 is not a person: the channel is the
author, as APA does for videos, or none).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any

from confindex.errors import InputError
from confindex.formats.links import link, media_kind
from confindex.formats.registry import CITATION_STYLES
from confindex.store.transcript import Transcript, Turn, Word
from confindex.timefmt import hms

STYLES = CITATION_STYLES  # formats/registry.py: the one list of styles
MAX_QUOTE_WORDS = 60
_MONTHS = (
    *("January", "February", "March", "April", "May", "June"),
    *("July", "August", "September", "October", "November", "December"),
)
_SENTENCE_END = re.compile(r"[.!?…]+[\"»”')\]]*$")


@dataclass
class Citation:
    speaker: str | None  # a speaker's given name; None while the voice is only SPEAKER_00
    title: str
    channel: str | None
    date: str | None  # ISO YYYY-MM-DD (or YYYY-MM / YYYY): upload or recording date
    url: str
    start: float  # first quoted word
    end: float  # last quoted word
    quote: str
    recording_id: str
    medium: str = "video"  # "video" | "audio" (links.media_kind)
    speaker_label: str | None = None  # SPEAKER_00 …: who said it, when unnamed
    # Issue 27: authors and DOI a user set (`confindex meta`); the authors come before any
    # speaker or channel. `media_url`: the span as a media fragment (#t=A,B) when the link
    # is to a media file.
    authors: list[str] = field(default_factory=list)
    doi: str | None = None
    media_url: str | None = None

    @property
    def time_range(self) -> str:
        return f"{hms(self.start)}–{hms(self.end)}"

    @property
    def author(self) -> str | None:
        """The first author set by a user, else the named speaker, else the channel (a
        corporate author), else nobody."""
        return (self.authors[0] if self.authors else None) or self.speaker or self.channel

    @property
    def person(self) -> bool:
        """Whether the author is a person: a named speaker, never a channel ("Radio France")."""
        return bool(self.authors or self.speaker) and _is_person(self.author)

    @property
    def people(self) -> list[str]:
        """The authors as a list: the user's, else the named speaker."""
        return list(self.authors) or ([self.speaker] if self.speaker else [])

    @property
    def doi_url(self) -> str | None:
        return f"https://doi.org/{self.doi}" if self.doi else None

    @property
    def key(self) -> str:
        """A citation key unique per moment: author, year, title word, recording, second."""
        year, _, _ = _date_parts(self.date)
        who = self.author or ""
        last = who.split()[-1] if self.person else who
        first_title = next((w for w in re.split(r"\W+", self.title) if len(w) > 3), self.title)
        rid = hashlib.sha1(self.recording_id.encode("utf-8")).hexdigest()[:4]
        base = (_key_part(last)[:16] or "anon") + (year or "nd") + _key_part(first_title)[:12]
        return f"{base}_{rid}_{int(self.start)}"

    def render(self, style: str) -> str:
        if style == "apa":
            return apa(self)
        if style == "chicago":
            return chicago(self)
        if style == "bibtex":
            return bibtex(self)
        if style == "ris":
            return ris(self)
        if style == "csl":
            return json.dumps([csl(self)], ensure_ascii=False, indent=1)
        raise InputError(f"unknown citation style {style!r}: use apa, chicago, bibtex, ris or csl")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["key"] = self.key
        d.update({s: self.render(s) for s in STYLES if s != "csl"})
        d["csl"] = csl(self)
        return d


def _flat(text: str | None) -> str | None:
    return " ".join(str(text).split()) if text is not None else None


def check_moment(transcript: Transcript, at: float) -> None:
    """InputError when `at` lies outside the recording (a typo must not cite its last words)."""
    import math

    from confindex.timefmt import hms

    if not isinstance(at, (int, float)) or not math.isfinite(at):
        # inf raised OverflowError in hms(); nan compared false everywhere and cited t=0.
        raise InputError(f"{at!r} is not a moment of {transcript.id} (give seconds, e.g. 754.2)")
    end = max([transcript.duration or 0.0, *(t.end for t in transcript.turns)])
    if at < 0 or (end > 0 and at > end + 1.0):  # 1 s of slack for rounding in links
        raise InputError(
            f"{hms(at)} is past the end of {transcript.id}, which lasts {hms(end)}"
            if at >= 0
            else f"a negative time ({at:g} s) is not a moment of {transcript.id}"
        )


def cite(transcript: Transcript, at: float) -> Citation:
    """Cite what was said at `at` seconds: the sentence of the turn that holds that moment.

    A moment before 0 or past the recording's end is an error (not its last sentence).
    """
    if not transcript.turns:
        raise InputError(f"recording {transcript.id} has no transcribed speech to cite")
    check_moment(transcript, at)
    turn = _turn_at(transcript.turns, at)
    words = [w for w in turn.words if w.text.strip()]
    if words:
        chosen = _sentence_at(words, at)
        quote = " ".join(" ".join(w.text.split()) for w in chosen)
        start, end = chosen[0].start, chosen[-1].end
    else:
        quote, start, end = " ".join(turn.text.split()), turn.start, turn.end
    return _citation(transcript, turn.speaker, start, end, quote)


def confirmed_name(transcript: Transcript, label: str | None) -> str | None:
    """A speaker's name when a user gave or confirmed it; an automatic (voice library) name
    is never an author."""
    if not label or label in transcript.auto_names:
        return None
    return transcript.speakers.get(label) or None


def _citation(
    transcript: Transcript, label: str | None, start: float, end: float, quote: str,
    fragment: bool = False,
) -> Citation:  # fmt: skip
    from confindex.formats.links import media_fragment

    rec = transcript.recording
    media_url = media_fragment(rec, start, end) if fragment else None
    return Citation(
        # One line each: a line break in a title, name or channel spoofed lines of APA and
        # Chicago citations on the terminal.
        speaker=_flat(confirmed_name(transcript, label)) or None,
        title=_flat(rec.title) or rec.id,
        channel=_flat(rec.channel or rec.uploader) or None,
        date=rec.upload_date,
        # A span of a media file: the link opens it at the start and plays to the end.
        url=media_url or link(rec, start),
        start=start,
        end=end,
        quote=quote,
        recording_id=rec.id,
        medium=media_kind(rec),
        speaker_label=label,
        authors=list(transcript.meta.get("authors") or []),
        doi=transcript.meta.get("doi") or None,
        media_url=media_url,
    )


def cite_span(transcript: Transcript, start: float, end: float) -> Citation:
    """Cite exactly the words that start in [start, end] (as `edit` chooses them): the
    quote, their start–end times, a link to the start and, for a media file, `#t=A,B`."""
    words = [w for tn in transcript.turns for w in tn.words if start <= w.start <= end]
    words = [w for w in words if w.text.strip()]
    if not words:
        raise InputError(f"no words start in {start:g}–{end:g} s of {transcript.id}")
    quote = " ".join(" ".join(w.text.split()) for w in words)
    labels = {w.speaker for w in words}
    label = labels.pop() if len(labels) == 1 else None  # several speakers: nobody's words
    return _citation(transcript, label, words[0].start, max(w.end for w in words), quote, True)


def _turn_at(turns: list[Turn], at: float) -> Turn:
    for t in turns:
        if t.start <= at <= t.end:
            return t
    # Between turns (a pause): the nearest one.
    return min(turns, key=lambda t: min(abs(t.start - at), abs(t.end - at)))


def _sentence_at(words: list[Word], at: float) -> list[Word]:
    """The sentence holding the word spoken at `at` (at most MAX_QUOTE_WORDS words around it)."""
    i = 0
    for k, w in enumerate(words):
        if w.start <= at:
            i = k
    lo = i
    while lo > 0 and not _SENTENCE_END.search(words[lo - 1].text.strip()):
        lo -= 1
    hi = i
    while hi < len(words) - 1 and not _SENTENCE_END.search(words[hi].text.strip()):
        hi += 1
    if hi - lo + 1 > MAX_QUOTE_WORDS:
        half = MAX_QUOTE_WORDS // 2
        lo = max(lo, i - half)
        hi = min(hi, lo + MAX_QUOTE_WORDS - 1)
    return words[lo : hi + 1]


# ---------------------------------------------------------------------------------------------
# Styles


def _is_person(name: str | None) -> bool:
    parts = (name or "").split()
    return len(parts) >= 2 and all(p.replace("-", "").replace("'", "").isalpha() for p in parts)


def _apa_author(name: str) -> str:
    """`Marie Dupont` → `Dupont, M.`; labels and single names stay as they are."""
    if not _is_person(name):
        return name
    *given, last = name.split()
    initials = " ".join(f"{g[0]}." for g in given)
    return f"{last}, {initials}"


def _date_parts(date: str | None) -> tuple[str | None, str | None, str | None]:
    if not date:
        return None, None, None
    parts = date.split("-")
    year = parts[0]
    month = _MONTHS[int(parts[1]) - 1] if len(parts) > 1 else None
    day = str(int(parts[2])) if len(parts) > 2 else None
    return year, month, day


def apa(c: Citation) -> str:
    """APA 7 (online video / audio): the speaker or channel as author, then the timed quote.

    With no author at all, APA moves the title into the author position.
    """
    year, month, day = _date_parts(c.date)
    when = (
        "n.d."
        if not year
        else ", ".join(p for p in (year, f"{month} {day}" if day else month) if p)
    )
    label = "[Video]" if c.medium == "video" else "[Audio]"
    people = [_apa_author(p) for p in c.people]
    if len(people) > 1:
        author: str | None = ", ".join(people[:-1]) + ", & " + people[-1]
    else:
        author = people[0] if people else c.channel
    publisher = f" {c.channel}." if c.channel and c.channel != author else ""
    doi = f" {c.doi_url}" if c.doi_url else ""
    where = f'{c.url}{doi} [{c.time_range}]: "{c.quote}"'
    if not author:
        return f"{c.title} {label}. ({when}).{publisher} {where}"
    author = author if author.endswith(".") else author + "."
    return f"{author} ({when}). {c.title} {label}.{publisher} {where}"


def chicago(c: Citation) -> str:
    """Chicago notes-bibliography (online multimedia), with the time range and the quote."""
    year, month, day = _date_parts(c.date)
    when = (
        "n.d." if not year else " ".join(p for p in (month, f"{day}," if day else None, year) if p)
    )
    who = f"{' and '.join(c.people)}, " if c.people else ""
    channel = f"{c.channel}, " if c.channel else ""
    medium = "video" if c.medium == "video" else "audio"
    url = c.doi_url or c.url
    at = f" ({c.url})" if c.doi_url else ""
    return f'{who}"{c.title}," {channel}{when}, {medium}, {c.time_range}, {url}{at}. "{c.quote}"'


_BIB_ESCAPE = {c: "\\" + c for c in "&%$#_{}"}


def _bib(s: str) -> str:
    return "".join(_BIB_ESCAPE.get(ch, ch) for ch in s)


def _key_part(s: str) -> str:
    ascii_s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]", "", ascii_s)


def bibtex(c: Citation) -> str:
    """A BibTeX @misc entry (biblatex-friendly `date`, `url`), the quote in `note`."""
    year, month, _ = _date_parts(c.date)
    who = c.author or ""
    fields = []
    if len(c.people) > 1:
        fields.append(("author", " and ".join(_bib(p) if _is_person(p) else "{" + _bib(p) + "}"
                                              for p in c.people)))  # fmt: skip
    elif who:
        # A corporate author is braced whole, or BibTeX reads "Radio France" as "France, R.".
        fields.append(("author", _bib(who) if c.person else "{" + _bib(who) + "}"))
    fields.append(("title", _bib(c.title)))
    if c.channel:
        fields.append(("howpublished", _bib(c.channel)))
    if year:
        fields.append(("year", year))
    if month:
        fields.append(("month", month[:3].lower()))
    if c.date:
        fields.append(("date", c.date))
    fields.append(("url", c.url))
    if c.doi:
        fields.append(("doi", _bib(c.doi)))
    medium = "Video" if c.medium == "video" else "Audio"
    note = f"{medium}, {hms(c.start)}--{hms(c.end)}. Quote: ``{_bib(c.quote)}''"
    fields.append(("note", note))
    body = ",\n".join(f"  {k} = {v}" if k == "month" else f"  {k} = {{{v}}}" for k, v in fields)
    return f"@misc{{{c.key},\n{body},\n}}"


def _one_line(s: str) -> str:
    return " ".join(s.split())


def ris(c: Citation) -> str:
    """An RIS record (Zotero, Mendeley, EndNote): VIDEO or SOUND, the quote in N1."""
    year, _, _ = _date_parts(c.date)
    lines = [("TY", "VIDEO" if c.medium == "video" else "SOUND"), ("ID", c.key)]
    if c.people:
        for p in c.people:
            *given, last = p.split()
            lines.append(("AU", f"{last}, {' '.join(given)}" if given else last))
    elif c.channel:
        lines.append(("AU", c.channel))
    lines.append(("TI", c.title))
    if year:
        lines.append(("PY", year))
    if c.date:
        parts = [*c.date.split("-"), "", ""]
        lines.append(("DA", "/".join(parts[:3]) + "/"))
    if c.channel:
        lines.append(("PB", c.channel))
    lines.append(("UR", c.url))
    if c.doi:
        lines.append(("DO", c.doi))
    lines.append(("N1", f'{c.time_range}: "{c.quote}"'))
    out = [f"{tag}  - {_one_line(value)}" for tag, value in lines]
    return "\n".join([*out, "ER  - "]) + "\n"


def csl(c: Citation) -> dict[str, Any]:
    """A CSL-JSON item (validates against the CSL data schema; citeproc, Zotero, Pandoc)."""
    item: dict[str, Any] = {
        "id": c.key,
        "type": "motion_picture" if c.medium == "video" else "broadcast",
        "title": c.title,
        "URL": c.url,
        "medium": "Video" if c.medium == "video" else "Audio",
        "note": f'{c.time_range}: "{c.quote}"',
    }
    if c.people:
        item["author"] = [
            {"family": p.split()[-1], "given": " ".join(p.split()[:-1])}
            if _is_person(p)
            else {"literal": p}
            for p in c.people
        ]
    elif c.author:
        item["author"] = [{"literal": c.author}]
    if c.channel:
        item["publisher"] = c.channel
    if c.doi:
        item["DOI"] = c.doi
    if c.date:
        item["issued"] = {"date-parts": [[int(p) for p in c.date.split("-")[:3]]]}
    return item
