"""Transcript → the import formats of qualitative-analysis tools. Pure rendering, no I/O.

Each format follows its tool's published import grammar, so speakers and times arrive intact
(to the 0.1 s these tools show):

- `eaf`: ELAN Annotation Format 3.0 (valid against MPI's `EAFv3.0.xsd`): one tier per speaker
  with its turns, and under it a `<speaker> words` tier (`Included_In`) with the words;
- `exb`: EXMARaLDA basic transcription (valid against its `basic-transcription.dtd` 1.4): a
  speaker table, a common timeline, one verbal tier per speaker;
- `maxqda`: a MAXQDA "transcript with timestamps": one paragraph per turn,
  `#hh:mm:ss-d# Speaker: text #hh:mm:ss-d#` (f4/f5-style stamps, tenths after the dash);
- `atlasti`: ATLAS.ti / NVivo timestamped paragraphs: `[hh:mm:ss.d] Speaker: text`;
- `nvivo`: NVivo's tab-delimited transcript rows: `Timespan<TAB>Speaker<TAB>Content` with a
  header row, timespans `hh:mm:ss.d-hh:mm:ss.d`;
- `docx`: a Word document (python-docx): title, source, one paragraph per turn starting with
  `[hh:mm:ss.d]` and the speaker in bold (NVivo and ATLAS.ti import such paragraphs too).

Titles, names and words come from outside: every string goes through `sanitize.xml_text` (XML
formats) or `_line` (text formats: no tab, line break or control character, and a `:` in a
speaker name becomes `∶` so that `Speaker:` still ends at the name).
"""

from __future__ import annotations

import io
import mimetypes
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from confindex import sanitize
from confindex.formats import registry
from confindex.speech.turns import overlapped
from confindex.store.transcript import Transcript, Turn, Word

# The formats, their file extensions and which are binary: formats/registry.py.
QDA_FORMATS = registry.QDA_FORMATS
BINARY_FORMATS = registry.BINARY_FORMATS
EXTENSIONS = {f: registry.FORMATS[f].extension for f in QDA_FORMATS}
EAF_SCHEMA = "http://www.mpi.nl/tools/elan/EAFv3.0.xsd"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"


# ------------------------------------------------------------------------------ time stamps
def _tenths(seconds: float) -> tuple[int, int, int, int]:
    d = max(0, round(seconds * 10))
    h, d = divmod(d, 36000)
    m, d = divmod(d, 600)
    s, d = divmod(d, 10)
    return h, m, s, d


def stamp_maxqda(seconds: float) -> str:
    """`#00:12:34-5#`: the f4/f5 time stamp MAXQDA (and ATLAS.ti) read, tenths after the dash."""
    h, m, s, d = _tenths(seconds)
    return f"#{h:02d}:{m:02d}:{s:02d}-{d}#"


def stamp_tenths(seconds: float) -> str:
    """`00:12:34.5`: NVivo's timestamp (it keeps tenths of a second)."""
    h, m, s, d = _tenths(seconds)
    return f"{h:02d}:{m:02d}:{s:02d}.{d}"


# ------------------------------------------------------------------------------ turns
@dataclass
class _Row:
    turn: Turn
    speaker: str | None  # display name (already unique per label)


def _speaker_names(t: Transcript) -> dict[str | None, str]:
    """Display name per speaker label, made unique (two labels renamed alike stay apart)."""
    names: dict[str | None, str] = {}
    used: set[str] = set()
    for turn in t.turns:
        if turn.speaker in names:
            continue
        base = sanitize.xml_text(t.speaker_name(turn.speaker) or "Speaker").strip() or "Speaker"
        name, n = base, 2
        while name in used:
            name, n = f"{base} ({turn.speaker or n})", n + 1
        used.add(name)
        names[turn.speaker] = name
    return names


def _rows(t: Transcript) -> Iterator[_Row]:
    names = _speaker_names(t)
    for turn in t.turns:
        if turn.text.strip():
            yield _Row(turn, names[turn.speaker] if _has_speakers(t) else None)


def _has_speakers(t: Transcript) -> bool:
    return any(turn.speaker for turn in t.turns)


def _line(text: object) -> str:
    """One line of a text format: no tab (a column), line break (a paragraph) or control."""
    return " ".join(sanitize.terminal(text).split())


def _name(name: str) -> str:
    return _line(name).replace(":", "\u2236")


def media_url(t: Transcript, root: Path | None = None) -> str:
    """Where the tool finds the media: a `file://` URL of the local media (the workspace copy
    first), else the source URL."""
    r = t.recording
    found = [p for p in r.media_candidates(root or Path()) if p.is_absolute()]
    # One that exists first; else the first (the media may be put back where it was).
    best = next((p for p in found if p.is_file()), found[0] if found else None)
    return best.as_uri() if best else (r.webpage_url or r.source)


def _mime(url: str) -> str:
    guess = mimetypes.guess_type(url.split("?")[0])[0]
    return guess or "unknown"


# ------------------------------------------------------------------------------ text formats
def to_maxqda(t: Transcript) -> str:
    paras = []
    for row in _rows(t):
        who = f"{_name(row.speaker)}: " if row.speaker else ""
        start, end = stamp_maxqda(row.turn.start), stamp_maxqda(row.turn.end)
        paras.append(f"{start} {who}{_line(row.turn.text)} {end}")
    return "\n\n".join(paras) + "\n"


def to_atlasti(t: Transcript) -> str:
    paras = []
    for row in _rows(t):
        who = f"{_name(row.speaker)}: " if row.speaker else ""
        paras.append(f"[{stamp_tenths(row.turn.start)}] {who}{_line(row.turn.text)}")
    return "\n\n".join(paras) + "\n"


def to_nvivo(t: Transcript) -> str:
    lines = ["Timespan\tSpeaker\tContent"]
    for row in _rows(t):
        span = f"{stamp_tenths(row.turn.start)}-{stamp_tenths(row.turn.end)}"
        lines.append(f"{span}\t{_name(row.speaker or '')}\t{_line(row.turn.text)}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ XML formats
def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _word_spans(turn: Turn, t0: int, t1: int) -> list[tuple[int, int, Word]]:
    """The turn's words in milliseconds, inside [t0, t1] and each at least 1 ms long (ELAN's
    Included_In tiers need children inside their parent)."""
    out = []
    for w in turn.words:
        if not w.text.strip():
            continue
        a = min(max(_ms(w.start), t0), t1 - 1)
        b = max(min(_ms(w.end), t1), a + 1)
        out.append((a, b, w))
    return out


def to_eaf(t: Transcript, root: Path | None = None, *, words: bool = True) -> str:
    from lxml import etree

    doc = etree.Element(
        "ANNOTATION_DOCUMENT",
        nsmap={"xsi": _XSI},
        AUTHOR="confindex",
        DATE=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        FORMAT="3.0",
        VERSION="3.0",
    )
    doc.set(f"{{{_XSI}}}noNamespaceSchemaLocation", EAF_SCHEMA)
    header = etree.SubElement(doc, "HEADER", MEDIA_FILE="", TIME_UNITS="milliseconds")
    url = sanitize.xml_text(sanitize.url(media_url(t, root)))
    etree.SubElement(header, "MEDIA_DESCRIPTOR", MEDIA_URL=url, MIME_TYPE=_mime(url))
    prop = etree.SubElement(header, "PROPERTY", NAME="URN")
    prop.text = f"urn:confindex:{quote(t.id)}"
    order = etree.SubElement(doc, "TIME_ORDER")
    slots: list[int] = []

    def slot(ms: int) -> str:
        slots.append(ms)
        return f"ts{len(slots)}"

    tiers: dict[str, tuple[object, object | None]] = {}
    ann = 0
    for row in _rows(t):
        name = row.speaker or "Transcript"
        if name not in tiers:
            attrs = {"LINGUISTIC_TYPE_REF": "utterance", "TIER_ID": name}
            if row.speaker:
                attrs["PARTICIPANT"] = name
            tier = etree.SubElement(doc, "TIER", **attrs)
            wtier = None
            if words:
                wattrs = {**attrs, "LINGUISTIC_TYPE_REF": "words", "PARENT_REF": name}
                wattrs["TIER_ID"] = f"{name} words"
                wtier = etree.SubElement(doc, "TIER", **wattrs)
            tiers[name] = (tier, wtier)
        tier, wtier = tiers[name]
        t0 = _ms(row.turn.start)
        t1 = max(_ms(row.turn.end), t0 + 1)
        ann += 1
        a = etree.SubElement(etree.SubElement(tier, "ANNOTATION"), "ALIGNABLE_ANNOTATION")
        a.set("ANNOTATION_ID", f"a{ann}")
        a.set("TIME_SLOT_REF1", slot(t0))
        a.set("TIME_SLOT_REF2", slot(t1))
        etree.SubElement(a, "ANNOTATION_VALUE").text = sanitize.xml_text(row.turn.text).strip()
        if wtier is None:
            continue
        for w0, w1, w in _word_spans(row.turn, t0, t1):
            ann += 1
            wa = etree.SubElement(etree.SubElement(wtier, "ANNOTATION"), "ALIGNABLE_ANNOTATION")
            wa.set("ANNOTATION_ID", f"a{ann}")
            wa.set("TIME_SLOT_REF1", slot(w0))
            wa.set("TIME_SLOT_REF2", slot(w1))
            etree.SubElement(wa, "ANNOTATION_VALUE").text = sanitize.xml_text(w.text).strip()

    def span_tier(tier_id: str, spans: Iterable[tuple[float, float, str]]) -> None:
        """A tier of (start s, end s, text) annotations, each at least 1 ms long."""
        nonlocal ann
        tier = etree.SubElement(doc, "TIER", LINGUISTIC_TYPE_REF="utterance", TIER_ID=tier_id)
        for start, end, value in spans:
            s0 = _ms(start)
            ann += 1
            a = etree.SubElement(etree.SubElement(tier, "ANNOTATION"), "ALIGNABLE_ANNOTATION")
            a.set("ANNOTATION_ID", f"a{ann}")
            a.set("TIME_SLOT_REF1", slot(s0))
            a.set("TIME_SLOT_REF2", slot(max(_ms(end), s0 + 1)))
            etree.SubElement(a, "ANNOTATION_VALUE").text = sanitize.xml_text(value)

    if t.flags:
        # The quality flags (quality.py) as their own tier: a researcher sees the passages to
        # check beside the speakers' tiers.
        span_tier(
            "confindex quality flags",
            ((f.start, f.end, f"{f.kind} ({f.score:.2f}): {f.reason}") for f in t.flags),
        )
    stretches = overlapped(t.diarization)
    if stretches:
        # Two people at once (issue 29): the speakers' tiers hold each word once, under the
        # speaker the recogniser heard; this tier shows who else was talking.
        span_tier(
            "confindex overlapped speech",
            (
                (o0, o1, " + ".join(t.speaker_name(w) or w for w in who))
                for o0, o1, who in stretches
            ),
        )
    if t.chapters:
        # Chapters (issue 32) as their own tier: title, then keywords.
        span_tier(
            "confindex chapters",
            (
                (c.start, c.end, c.title + (f" ({'; '.join(c.keywords)})" if c.keywords else ""))
                for c in t.chapters
            ),
        )
    prop2 = etree.SubElement(header, "PROPERTY", NAME="lastUsedAnnotationId")
    prop2.text = str(ann)
    # Time slots in time order (as ELAN writes them), renumbered so ts1 is the earliest.
    rank = {f"ts{i + 1}": f"ts{n}" for n, i in enumerate(sorted(range(len(slots)),
            key=slots.__getitem__), start=1)}  # fmt: skip
    for a in doc.iter("ALIGNABLE_ANNOTATION"):
        a.set("TIME_SLOT_REF1", rank[a.get("TIME_SLOT_REF1")])
        a.set("TIME_SLOT_REF2", rank[a.get("TIME_SLOT_REF2")])
    for i, ms in enumerate(sorted(slots), start=1):
        etree.SubElement(order, "TIME_SLOT", TIME_SLOT_ID=f"ts{i}", TIME_VALUE=str(ms))
    # TIER elements come before the types in the schema's sequence.
    etree.SubElement(
        doc,
        "LINGUISTIC_TYPE",
        GRAPHIC_REFERENCES="false",
        LINGUISTIC_TYPE_ID="utterance",
        TIME_ALIGNABLE="true",
    )
    if words:
        etree.SubElement(
            doc,
            "LINGUISTIC_TYPE",
            CONSTRAINTS="Included_In",
            GRAPHIC_REFERENCES="false",
            LINGUISTIC_TYPE_ID="words",
            TIME_ALIGNABLE="true",
        )
    lang = t.language or "und"
    etree.SubElement(doc, "LANGUAGE", LANG_ID=sanitize.xml_text(lang), LANG_LABEL=lang)
    for stereo, desc in (
        ("Time_Subdivision", "Time subdivision of parent annotation's time interval, no time gaps allowed within this interval"),  # noqa: E501
        ("Symbolic_Subdivision", "Symbolic subdivision of a parent annotation. Annotations refering to the same parent are ordered"),  # noqa: E501
        ("Symbolic_Association", "1-1 association with a parent annotation"),
        ("Included_In", "Time alignable annotations within the parent annotation's time interval, gaps are allowed"),  # noqa: E501
    ):  # fmt: skip
        etree.SubElement(doc, "CONSTRAINT", DESCRIPTION=desc, STEREOTYPE=stereo)
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True).decode()


def to_exb(t: Transcript, root: Path | None = None) -> str:
    from lxml import etree

    doc = etree.Element("basic-transcription")
    head = etree.SubElement(doc, "head")
    meta = etree.SubElement(head, "meta-information")
    etree.SubElement(meta, "project-name").text = "confindex"
    etree.SubElement(meta, "transcription-name").text = sanitize.xml_text(t.recording.title)
    url = sanitize.xml_text(sanitize.url(media_url(t, root)))
    etree.SubElement(meta, "referenced-file", url=url)
    ud = etree.SubElement(meta, "ud-meta-information")
    for key, value in (
        ("confindex-id", t.id),
        ("source", t.recording.webpage_url or t.recording.source),
        ("language", t.language or ""),
    ):
        etree.SubElement(ud, "ud-information", **{"attribute-name": key}).text = sanitize.xml_text(
            value
        )
    etree.SubElement(meta, "comment")
    etree.SubElement(meta, "transcription-convention")
    table = etree.SubElement(head, "speakertable")
    rows = list(_rows(t))
    speakers: dict[str, str] = {}
    for row in rows:
        name = row.speaker or "Transcript"
        if name in speakers:
            continue
        sid = speakers[name] = f"SPK{len(speakers)}"
        sp = etree.SubElement(table, "speaker", id=sid)
        etree.SubElement(sp, "abbreviation").text = name
        etree.SubElement(sp, "sex", value="u")
        langs = etree.SubElement(sp, "languages-used")
        if t.language:
            etree.SubElement(langs, "language", lang=t.language)
        for tag in ("l1", "l2", "ud-speaker-information", "comment"):
            etree.SubElement(sp, tag)
    body = etree.SubElement(doc, "basic-body")
    timeline = etree.SubElement(body, "common-timeline")
    # One timeline point per distinct time (to the ms), in time order, as EXMARaLDA wants.
    spans = [(_ms(r.turn.start), max(_ms(r.turn.end), _ms(r.turn.start) + 1)) for r in rows]
    points = sorted({ms for span in spans for ms in span})
    tli = {ms: f"T{i}" for i, ms in enumerate(points)}
    for ms in points:
        etree.SubElement(timeline, "tli", id=tli[ms], time=f"{ms / 1000:.3f}")
    tiers = {}
    for name, sid in speakers.items():
        tiers[name] = etree.SubElement(
            body,
            "tier",
            id=f"TIE{len(tiers)}",
            speaker=sid,
            category="v",
            type="t",
            **{"display-name": f"{name} [v]"},
        )
    for row, (a, b) in zip(rows, spans, strict=True):
        ev = etree.SubElement(tiers[row.speaker or "Transcript"], "event", start=tli[a], end=tli[b])
        ev.text = sanitize.xml_text(row.turn.text).strip()
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True).decode()


def to_docx(t: Transcript, root: Path | None = None) -> bytes:
    from docx import Document

    d = Document()
    d.core_properties.title = sanitize.xml_text(t.recording.title)[:255]
    d.core_properties.author = "confindex"
    d.add_heading(sanitize.xml_text(t.recording.title), level=1)
    r = t.recording
    meta = " · ".join(x for x in (r.channel, r.upload_date) if x)
    if meta:
        d.add_paragraph(sanitize.xml_text(meta))
    d.add_paragraph(sanitize.xml_text(r.webpage_url or r.source))
    for row in _rows(t):
        p = d.add_paragraph()
        p.add_run(f"[{stamp_tenths(row.turn.start)}] ")
        if row.speaker:
            p.add_run(sanitize.xml_text(row.speaker)).bold = True
            p.add_run(": ")
        p.add_run(sanitize.xml_text(row.turn.text).strip())
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def render(t: Transcript, fmt: str, root: Path | None = None) -> str | bytes:
    """The transcript in one of QDA_FORMATS (`root`: the workspace, to find the media)."""
    if fmt == "eaf":
        return to_eaf(t, root)
    if fmt == "exb":
        return to_exb(t, root)
    if fmt == "docx":
        return to_docx(t, root)
    return {"maxqda": to_maxqda, "atlasti": to_atlasti, "nvivo": to_nvivo}[fmt](t)
