"""Chapters out (issue 32): WebVTT chapters (players read them), a Markdown table of contents
with citable links, and an OHMS-style segment index (XML, schema in `ohms_index.xsd`); chapter
references in (JSON or WebVTT) and boundary precision/recall for `confindex eval chapters`.

Pure: every text that came from the recording is escaped for the format it goes into.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from confindex import sanitize
from confindex.errors import InputError
from confindex.formats import links
from confindex.store.transcript import Chapter, Transcript
from confindex.timefmt import clock, hms

CHAPTER_FORMATS = ("text", "json", "vtt", "md", "ohms")
OHMS_XSD = "ohms_index.xsd"


def xsd_text() -> str:
    """The XML schema the OHMS-style index follows (shipped beside this module)."""
    return resources.files("confindex.formats").joinpath(OHMS_XSD).read_text(encoding="utf-8")


def chapter_dict(t: Transcript, c: Chapter) -> dict[str, Any]:
    d = asdict(c)
    d["speaker_names"] = [t.speaker_name(s) for s in c.speakers]
    d["link"] = links.link(t.recording, c.start)
    return d


def to_json(t: Transcript) -> str:
    data = {
        "recording": t.id,
        "title": t.recording.title,
        "duration": t.duration,
        "chapters": [chapter_dict(t, c) for c in t.chapters],
    }
    return sanitize.json_text(json.dumps(data, ensure_ascii=False, indent=1)) + "\n"


def to_vtt(t: Transcript) -> str:
    """WebVTT chapters: one cue per chapter whose text is its title (what players list)."""
    out = ["WEBVTT", ""]
    for k, c in enumerate(t.chapters, start=1):
        end = max(c.end, c.start + 0.001)
        out += [f"chapter-{k}", f"{clock(c.start, '.')} --> {clock(end, '.')}"]
        out += [sanitize.vtt_text(c.title or f"Chapter {k}"), ""]
    return "\n".join(out)


def _names(t: Transcript, labels: Sequence[str]) -> str:
    return ", ".join(t.speaker_name(s) or s for s in labels)


def to_md(t: Transcript) -> str:
    """A Markdown table of contents: each chapter a link to its second, with its keywords,
    speakers and languages."""
    out = [f"# {sanitize.markdown(t.recording.title)}", "", "## Chapters", ""]
    for k, c in enumerate(t.chapters, start=1):
        url = sanitize.url(links.link(t.recording, c.start))
        line = f"{k}. [{hms(c.start)}](<{url}>) **{sanitize.markdown(c.title)}**"
        extra = []
        if c.keywords:
            extra.append("keywords: " + ", ".join(sanitize.markdown(w) for w in c.keywords))
        if c.speakers:
            extra.append("speakers: " + sanitize.markdown(_names(t, c.speakers)))
        if c.languages:
            extra.append("languages: " + ", ".join(c.languages))
        if extra:
            line += " — " + "; ".join(extra)
        out.append(line)
    return "\n".join(out) + "\n"


def to_text(t: Transcript) -> str:
    """Plain lines for the terminal (the caller escapes for the terminal)."""
    out = []
    for k, c in enumerate(t.chapters, start=1):
        who = f" [{_names(t, c.speakers)}]" if c.speakers else ""
        langs = f" ({', '.join(c.languages)})" if c.languages else ""
        out.append(f"{k:>2}. {hms(c.start)}  {c.title}{who}{langs}")
        if c.keywords:
            out.append(f"    keywords: {', '.join(c.keywords)}")
    return "\n".join(out) + ("\n" if out else "")


def to_ohms(t: Transcript) -> str:
    """An OHMS-style segment index: `ROOT/record/index/point` with the start second, title,
    partial transcript, synopsis, keywords (semicolon-separated, as OHMS writes them) and a
    link to the second; see `ohms_index.xsd`."""
    from xml.etree import ElementTree as ET

    x = sanitize.xml_text
    root = ET.Element("ROOT")
    record = ET.SubElement(root, "record", id=x(t.id), dt="confindex")
    ET.SubElement(record, "title").text = x(t.recording.title)
    ET.SubElement(record, "duration").text = hms(t.duration)
    ET.SubElement(record, "media_url").text = x(sanitize.url(links.link(t.recording, 0)))
    ET.SubElement(record, "language").text = x(t.language or "und")
    index = ET.SubElement(record, "index")
    for c in t.chapters:
        point = ET.SubElement(index, "point", kind=c.kind)
        ET.SubElement(point, "time").text = str(int(c.start))
        ET.SubElement(point, "end").text = str(round(c.end))
        ET.SubElement(point, "title").text = x(c.title)
        partial = " ".join(c.synopsis.split()[:12])
        ET.SubElement(point, "partial_transcript").text = x(partial)
        ET.SubElement(point, "synopsis").text = x(c.synopsis)
        ET.SubElement(point, "keywords").text = x(";".join(c.keywords))
        ET.SubElement(point, "subjects").text = x(";".join(c.languages))
        ET.SubElement(point, "speakers").text = x(";".join(_names(t, c.speakers).split(", ")))
        link = ET.SubElement(point, "hyperlinks")
        link.text = x(sanitize.url(links.link(t.recording, c.start)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def render(t: Transcript, fmt: str) -> str:
    renderers = {"text": to_text, "json": to_json, "vtt": to_vtt, "md": to_md, "ohms": to_ohms}
    if fmt not in renderers:
        raise InputError(f"unknown chapter format {fmt!r} (use {', '.join(CHAPTER_FORMATS)})")
    return renderers[fmt](t)


# ------------------------------------------------------------------ evaluation
def reference_starts(path: Path) -> list[float]:
    """Chapter start seconds from a reference file: WebVTT chapters (each cue's start) or JSON
    (a list of seconds, of objects with `start`, or `{"chapters": [...]}`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    if text.lstrip("\ufeff").startswith("WEBVTT"):
        return _vtt_starts(path)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{path} is neither WebVTT nor JSON ({exc})") from None
    items = data.get("chapters") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InputError(f"{path}: expected a list of chapters")
    out = []
    for item in items:
        value = item.get("start") if isinstance(item, dict) else item
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{path}: a chapter start is not a number: {value!r}")
        out.append(float(value))
    return sorted(out)


def _vtt_starts(path: Path) -> list[float]:
    import webvtt

    try:
        # Caption.start_in_seconds is floored to the second: the clock string has milliseconds.
        return sorted(_seconds(c.start) for c in webvtt.read(str(path)))
    except Exception as exc:  # webvtt-py raises its own MalformedFileError, and ValueErrors
        raise InputError(f"{path}: not valid WebVTT ({exc})") from None


def _seconds(clock_text: str) -> float:
    parts = [float(x) for x in clock_text.split(":")]
    return round(sum(v * 60**i for i, v in enumerate(reversed(parts))), 3)


@dataclass
class BoundaryScore:
    tolerance: float
    reference: list[float]
    found: list[float]
    matched: int
    precision: float
    recall: float
    f1: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def boundary_score(
    found: Sequence[float], reference: Sequence[float], tolerance: float = 5.0
) -> BoundaryScore:
    """Boundary precision/recall: a reference boundary is found when a computed one lies within
    ±`tolerance` s, each used once (closest pairs first). Chapter starts at 0 s are not
    boundaries and are left out on both sides."""
    ref = sorted(x for x in reference if x > 0)
    hyp = sorted(x for x in found if x > 0)
    pairs = sorted(
        (abs(h - r), i, j)
        for i, r in enumerate(ref)
        for j, h in enumerate(hyp)
        if abs(h - r) <= tolerance
    )
    used_r: set[int] = set()
    used_h: set[int] = set()
    for _d, i, j in pairs:
        if i not in used_r and j not in used_h:
            used_r.add(i)
            used_h.add(j)
    m = len(used_r)
    precision = m / len(hyp) if hyp else 1.0
    recall = m / len(ref) if ref else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return BoundaryScore(tolerance, ref, hyp, m, round(precision, 4), round(recall, 4),
                         round(f1, 4))  # fmt: skip
