"""Pure view helpers of `confindex serve`: transcript, timeline and snippet HTML (every piece
of untrusted text escaped), built with f-strings where Jinja was measured too slow."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from confindex import sanitize
from confindex.speech.turns import overlapped
from confindex.store.transcript import Transcript
from confindex.timefmt import hms

SPEAKER_COLOURS = 8  # CSS classes spk0 … spk7


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def marked(snippet: str, spans: list[tuple[int, int]]) -> Markup:
    """The snippet as HTML: every piece escaped, matches in <mark>."""
    out, pos = [], 0
    for s, e in spans:
        out += [escape(snippet[pos:s]), Markup("<mark>"), escape(snippet[s:e]), Markup("</mark>")]
        pos = e
    out.append(escape(snippet[pos:]))
    return Markup("").join(out)


def safe_href(link: str) -> str:
    """A link for an href: only web and file URLs (a `javascript:` source opens nothing)."""
    clean = sanitize.url(link)
    return clean if clean.startswith(("http://", "https://", "file://", "ftp://")) else "#"


def speaker_classes(t: Transcript) -> dict[str | None, int]:
    from confindex.store.speakers import labels

    return {label: i % SPEAKER_COLOURS for i, label in enumerate(labels(t))}


def words_html(turn: Any) -> Markup:
    """A turn's words as `<span data-t=START>word</span>`: one element per word, and no
    listener on any of them (the page listens once, on the transcript). Built with
    html.escape and one join: Markup.format per word took 1.5 s for a 2-hour page (20,000
    words), this takes ~30 ms."""
    words = [w for w in turn.words if w.text.strip()]
    if not words:
        return Markup(f'<span data-t="{turn.start:.2f}">{_esc(turn.text.strip())}</span>')
    return Markup(
        " ".join(f'<span data-t="{w.start:.2f}">{_esc(w.text.strip())}</span>' for w in words)
    )


def transcript_html(t: Transcript, classes: dict[str | None, int]) -> Markup:
    """The transcript as speaker turns, built in one pass of f-strings and html.escape (every
    piece of text escaped): through Jinja, a 2-hour transcript took ~450 ms to render; this is
    cached per transcript version besides."""
    out = []
    for turn in t.turns:
        label = _esc(turn.speaker or "")
        name = _esc(t.speaker_name(turn.speaker) or "?")
        lang = f' <span class="lang">{_esc(turn.language)}</span>' if turn.language else ""
        over = ""
        if turn.overlap:  # issue 29: who else talks during this turn
            who = ", ".join(
                f'<span class="name" data-label="{_esc(o)}">{_esc(t.speaker_name(o) or o)}</span>'
                for o in turn.overlap
            )
            over = f' <span class="over">over {who}</span>'
        out.append(
            f'<article class="turn spk{classes.get(turn.speaker, 0)}" data-label="{label}"'
            f' data-turn="{turn.id}" data-start="{turn.start:.3f}" data-end="{turn.end:.3f}">'
            f'<header><button type="button" class="ts" data-t="{turn.start:.2f}">'
            f"[{hms(turn.start)}]</button> "
            f'<span class="who" data-label="{label}">{name}</span>{lang}{over}</header>'
            f"<p>{words_html(turn)}</p></article>"
        )
    return Markup("\n".join(out))


def timeline_bars(tl: dict[str, Any]) -> Markup:
    """The turns' bars, then one overlap bar in the lane of each speaker of each stretch of
    overlapped speech (drawn over the turn bars, outlined, named in its title and aria-label)."""
    bars = [
        f'<rect class="bar spk{b["cls"]}" data-label="{_esc(b["label"] or "")}" x="{b["x"]}"'
        f' y="{b["y"] * 10 + 1}" width="{b["w"]}" height="8"></rect>'
        for b in tl["bars"]
    ]
    for o in tl.get("overlaps", []):
        said = _esc(o["said"])
        bars += [
            f'<rect class="ovl spk{cls}" data-label="{_esc(label)}"'
            f' data-overlap="{_esc(" ".join(o["labels"]))}" data-when="{_esc(o["when"])}"'
            f' x="{o["x"]}" y="{y * 10 + 1}"'
            f' width="{o["w"]}" height="8" role="img" aria-label="{said}">'
            f"<title>{said}</title></rect>"
            for label, y, cls in o["lanes"]
        ]
    return Markup("".join(bars))


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def overlap_bars(
    t: Transcript, classes: dict[str | None, int], lane_of: dict[str, int], duration: float
) -> list[dict[str, Any]]:
    """Stretches where two or more speakers talk at once (the diarization's overlapping
    segments, speech/turns.overlapped: >= 0.2 s), each with the lanes it is drawn in and a
    sentence naming who talks at once (display names; escaped when drawn)."""
    out = []
    for a, b, who in overlapped(t.diarization):
        lanes = [
            (label, lane_of[label], classes.get(label, 0)) for label in who if label in lane_of
        ]
        if len(lanes) < 2:
            continue
        names = [t.speaker_name(label) or label for label, _y, _c in lanes]
        out.append(
            {
                "x": round(a, 2),
                "w": round(max(b - a, duration / 2000), 2),
                "labels": [label for label, _y, _c in lanes],
                "lanes": lanes,
                "when": (when := f"{hms(a)}–{hms(b)}"),
                "said": f"{_names(names)} at once, {when}",
            }
        )
    return out


def timeline(t: Transcript, classes: dict[str | None, int]) -> dict[str, Any]:
    """One lane per speaker, one bar per turn, in a viewBox whose x unit is the second; where
    speakers talk at once (issue 29), a bar in each of their lanes (`overlaps`)."""
    duration = max([t.duration or 0.0, *(x.end for x in t.turns), 1.0])
    lanes = [label for label in classes if label is not None]
    lane_of = {label: i for i, label in enumerate(lanes)}
    bars = [
        {
            "x": round(x.start, 2),
            "w": round(max(x.end - x.start, duration / 2000), 2),
            "y": lane_of.get(x.speaker, 0),
            "cls": classes.get(x.speaker, 0),
            "label": x.speaker,
        }
        for x in t.turns
    ]
    return {
        "duration": round(duration, 2),
        "lanes": lanes,
        "bars": bars,
        "overlaps": overlap_bars(t, classes, lane_of, duration),
    }


FLAG_PAD = 0.5  # s decoded on each side of a flagged passage (a word cut at its edge is redone)


@dataclass
class ShownFlag:
    kind: str
    start: float
    end: float
    score: float
    reason: str
    pad_start: float  # what "decode again" decodes
    pad_end: float


def shown_flags(t: Transcript) -> list[ShownFlag]:
    end = max([t.duration or 0.0, *(x.end for x in t.turns)])
    return [
        ShownFlag(
            f.kind,
            f.start,
            f.end,
            f.score,
            f.reason,
            max(0.0, f.start - FLAG_PAD),
            min(end, f.end + FLAG_PAD) if end else f.end + FLAG_PAD,
        )
        for f in t.flags
    ]
