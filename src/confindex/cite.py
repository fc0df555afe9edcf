"""Citations of a moment in a recording: APA, Chicago and BibTeX (pure functions).

The quote is the exact words of the transcript: the sentence (within the speaker's turn) that
holds the word spoken at `at`, timed by the word timings.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

from .errors import InputError
from .links import link
from .timefmt import hms
from .transcript import Transcript, Turn, Word

STYLES = ("apa", "chicago", "bibtex")
MAX_QUOTE_WORDS = 60
_MONTHS = (
    *("January", "February", "March", "April", "May", "June"),
    *("July", "August", "September", "October", "November", "December"),
)
_SENTENCE_END = re.compile(r"[.!?…]+[\"»”')\]]*$")


@dataclass
class Citation:
    speaker: str | None  # display name
    title: str
    channel: str | None
    date: str | None  # ISO YYYY-MM-DD (or YYYY-MM / YYYY)
    url: str
    start: float  # first quoted word
    end: float  # last quoted word
    quote: str
    recording_id: str

    @property
    def time_range(self) -> str:
        return f"{hms(self.start)}–{hms(self.end)}"

    def render(self, style: str) -> str:
        if style == "apa":
            return apa(self)
        if style == "chicago":
            return chicago(self)
        if style == "bibtex":
            return bibtex(self)
        raise InputError(f"unknown citation style {style!r}: use apa, chicago or bibtex")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update({s: self.render(s) for s in STYLES})
        return d


def check_moment(transcript: Transcript, at: float) -> None:
    """InputError when `at` lies outside the recording (a typo must not cite its last words)."""
    from .timefmt import hms

    end = max([transcript.duration or 0.0, *(t.end for t in transcript.turns)])
    if at < 0 or (end > 0 and at > end + 1.0):  # 1 s of slack for rounding in links
        raise InputError(
            f"{hms(at)} is past the end of {transcript.id}, which lasts {hms(end)}"
            if at >= 0
            else f"a negative time ({at:g} s) is not a moment of {transcript.id}"
        )


def cite(transcript: Transcript, at: float) -> Citation:
    """Cite what was said at `at` seconds: the sentence of the turn that holds that moment."""
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
    rec = transcript.recording
    return Citation(
        speaker=transcript.speaker_name(turn.speaker),
        title=rec.title,
        channel=rec.channel or rec.uploader,
        date=rec.upload_date,
        url=link(rec, start),
        start=start,
        end=end,
        quote=quote,
        recording_id=rec.id,
    )


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
    """APA 7 (online video), the speaker as author, then the timed quote."""
    year, month, day = _date_parts(c.date)
    when = (
        "n.d."
        if not year
        else ", ".join(p for p in (year, f"{month} {day}" if day else month) if p)
    )
    author = _apa_author(c.speaker) if c.speaker else (c.channel or c.title)
    publisher = f" {c.channel}." if c.channel and c.channel != author else ""
    author = author if author.endswith(".") else author + "."
    return f'{author} ({when}). {c.title} [Video].{publisher} {c.url} [{c.time_range}]: "{c.quote}"'


def chicago(c: Citation) -> str:
    """Chicago notes-bibliography (online multimedia), with the time range and the quote."""
    year, month, day = _date_parts(c.date)
    when = (
        "n.d." if not year else " ".join(p for p in (month, f"{day}," if day else None, year) if p)
    )
    who = f"{c.speaker}, " if c.speaker else ""
    channel = f"{c.channel}, " if c.channel else ""
    return f'{who}"{c.title}," {channel}{when}, video, {c.time_range}, {c.url}. "{c.quote}"'


_BIB_ESCAPE = {c: "\\" + c for c in "&%$#_{}"}


def _bib(s: str) -> str:
    return "".join(_BIB_ESCAPE.get(ch, ch) for ch in s)


def _key_part(s: str) -> str:
    ascii_s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]", "", ascii_s)


def bibtex(c: Citation) -> str:
    """A BibTeX @misc entry (biblatex-friendly `date`, `url`), the quote in `note`."""
    year, month, _ = _date_parts(c.date)
    who = c.speaker or c.channel or ""
    last = who.split()[-1] if _is_person(who) else who
    first_title = next((w for w in re.split(r"\W+", c.title) if len(w) > 3), c.title)
    key = (_key_part(last) or "rec") + (year or "nd") + _key_part(first_title)[:12]
    fields = []
    if who:
        fields.append(("author", "{" + _bib(who) + "}" if not _is_person(who) else _bib(who)))
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
    note = f"Video, {hms(c.start)}--{hms(c.end)}. Quote: ``{_bib(c.quote)}''"
    fields.append(("note", note))
    body = ",\n".join(f"  {k} = {v}" if k == "month" else f"  {k} = {{{v}}}" for k, v in fields)
    return f"@misc{{{key},\n{body},\n}}"
