"""Transcript → subtitle and text formats: srt, vtt, txt, md, rttm, json. Pure rendering."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confindex import sanitize
from confindex.errors import InputError
from confindex.formats.registry import (
    BINARY_FORMATS,
    EXPORT_FORMATS,
    QDA_FORMATS,
    WRITABLE,
    WRITTEN_BESIDE,
    file_name,
)
from confindex.speech.turns import speaker_segments_from_turns
from confindex.store.transcript import SpeakerSegment, Transcript, Turn, Word
from confindex.store.workspace import Workspace
from confindex.timefmt import clock, hms

# Every format's name, extension and kind: formats/registry.py (one list for CLI, web, Store).
FORMATS = EXPORT_FORMATS
__all__ = [
    "BINARY_FORMATS",
    "DEFAULT_STYLE",
    "FORMATS",
    "QDA_FORMATS",
    "WRITABLE",
    "WRITTEN_BESIDE",
    "CueStyle",
    "cue_style",
    "file_name",
    "parse_formats",
    "render",
    "render_bytes",
]


@dataclass(frozen=True)
class CueStyle:
    """How subtitle cues are cut. Defaults follow broadcast guidelines (BBC, Netflix: ≤ 2
    lines of ≤ 42 characters, ≥ ~0.8 s on screen) and Whisper's `--max_line_width/count`."""

    max_line_width: int = 42
    max_line_count: int = 2
    min_duration: float = 0.8
    max_duration: float = 7.0
    pause: float = 0.6  # a silence this long ends a cue: the next words start a new thought

    def __post_init__(self) -> None:
        if self.max_line_width < 10:
            raise InputError(f"--max-line-width {self.max_line_width}: use 10 or more")
        if self.max_line_count < 1:
            raise InputError(f"--max-line-count {self.max_line_count}: use 1 or more")


DEFAULT_STYLE = CueStyle()
CUE_KEYS = ("max_line_width", "max_line_count", "min_duration", "max_duration", "pause")


def cue_style(ws: Workspace | None, **overrides: Any) -> CueStyle:
    """The subtitle CueStyle: built-in defaults < config [subtitles] < explicit overrides."""
    from confindex.config import section

    conf = section(ws, "subtitles")
    bad = sorted(set(conf) - set(CUE_KEYS))
    if bad:
        raise InputError(f"[subtitles] has unknown keys {bad}: use {sorted(CUE_KEYS)}")
    conf.update({k: v for k, v in overrides.items() if v is not None})
    return CueStyle(**conf)


@dataclass
class Cue:
    start: float
    end: float
    speaker: str | None
    lines: list[str]
    words: list[Word]
    prefix: str = ""

    @property
    def text(self) -> str:
        return " ".join(self.lines)


def _prefix(speaker: str | None, show: bool, style: CueStyle) -> str:
    """The speaker label an SRT cue shows before its first line (counted in its width). A name
    longer than half a line is shortened there (VTT keeps it whole in its `<v>` tag)."""
    if not (show and speaker):
        return ""
    limit = max(8, style.max_line_width // 2 - 3)
    label = speaker if len(speaker) <= limit else speaker[: limit - 1].rstrip() + "…"
    return f"[{label}] "


def _tokens(words: Sequence[Word], width: int) -> list[str]:
    """Word texts, with any word longer than a line cut into line-sized pieces."""
    out: list[str] = []
    for w in words:
        text = w.text.strip()
        while len(text) > width:
            out.append(text[:width])
            text = text[width:]
        if text:
            out.append(text)
    return out


def layout(words: Sequence[Word], prefix: str, style: CueStyle) -> list[str] | None:
    """Lines for `words` (the first one after `prefix`), or None if they need too many lines."""
    lines: list[str] = []
    line = ""
    budget = style.max_line_width - len(prefix)
    for tok in _tokens(words, style.max_line_width):
        if line and len(line) + 1 + len(tok) <= budget:
            line = f"{line} {tok}"
        elif not line and len(tok) <= budget:
            line = tok
        else:
            lines.append(line)
            if len(lines) >= style.max_line_count:
                return None
            line, budget = tok, style.max_line_width
    if line:
        lines.append(line)
    return lines


def _ends_sentence(word: Word) -> bool:
    return word.text.rstrip("\"'»”)").endswith((".", "?", "!", "…", "。", "？", "！"))


def _units(words: Sequence[Word], style: CueStyle) -> list[list[Word]]:
    """Words cut at sentence ends and at pauses: no cue spans either."""
    units: list[list[Word]] = []
    for w in words:
        if units and not (
            _ends_sentence(units[-1][-1]) or w.start - units[-1][-1].end >= style.pause
        ):
            units[-1].append(w)
        else:
            units.append([w])
    return units


def _cut(unit: Sequence[Word], k: int) -> list[list[Word]]:
    """`unit` in `k` consecutive parts of about equal length in characters."""
    sizes = [len(w.text.strip()) + 1 for w in unit]
    total = sum(sizes)
    parts: list[list[Word]] = []
    start, acc = 0, 0
    for i in range(1, k):
        target = total * i / k
        end = start + 1
        acc += sizes[start]
        # advance while the next word brings the cut closer to the target (leave ≥ 1 per part)
        while end < len(unit) - (k - i) and abs(acc + sizes[end] - target) < abs(acc - target):
            acc += sizes[end]
            end += 1
        parts.append(list(unit[start:end]))
        start = end
    parts.append(list(unit[start:]))
    return parts


def _fits(part: Sequence[Word], prefix: str, style: CueStyle) -> bool:
    long = part[-1].end - part[0].start > style.max_duration and len(part) > 1
    return not long and layout(part, prefix, style) is not None


def _balanced(unit: Sequence[Word], prefix: str, style: CueStyle) -> list[list[Word]]:
    for k in range(1, len(unit) + 1):
        parts = _cut(unit, k)
        if all(_fits(p, prefix, style) for p in parts):
            return parts
    return [[w] for w in unit]


def _turn_cues(
    words: Sequence[Word], speaker: str | None, prefix: str, style: CueStyle
) -> Iterator[Cue]:
    """Cues over one speaker's words: each sentence (or pause-free stretch) is cut into the
    fewest cues that fit the lines and `max_duration`, of balanced length, so a sentence never
    leaves one orphan word on a cue of its own."""
    for unit in _units(words, style):
        parts = _balanced(unit, prefix, style)
        for part in parts:
            lines = layout(part, prefix, style)
            if lines is not None:
                yield Cue(part[0].start, part[-1].end, speaker, lines, part, prefix)
            else:
                yield from _overlong(part, speaker, prefix, style)


def _overlong(
    part: Sequence[Word], speaker: str | None, prefix: str, style: CueStyle
) -> Iterator[Cue]:
    """A word longer than a whole cue (Whisper once wrote a 112-character "deskļļļļ…" over a
    meeting): its line-sized pieces over as many cues as it takes, sharing its time, so that no
    line is wider than asked and no character is lost."""
    width = max(1, style.max_line_width - len(prefix))  # every cue's first line has the label
    text = "".join(w.text.strip() for w in part)
    pieces = [text[i : i + width] for i in range(0, len(text), width)]
    n = style.max_line_count
    groups = [pieces[i : i + n] for i in range(0, len(pieces), n)]
    start, step = part[0].start, (part[-1].end - part[0].start) / len(groups)
    for k, lines in enumerate(groups):
        yield Cue(start + k * step, start + (k + 1) * step, speaker, lines, part, prefix)


def _enforce_min_duration(cs: list[Cue], style: CueStyle, duration: float | None) -> None:
    """Give every cue at least `min_duration` on screen. In order of preference: extend it into
    the silence after it (then before it), merge it into a neighbour of the same speaker when
    the text still fits, take time from the next cue, then from the previous one, as far as
    they keep their own minimum, and as a last resort (very fast speech in narrow lines) delay
    the next cue. The recording's last cue may stay short (nothing follows)."""
    i = 0
    while i < len(cs):
        c = cs[i]
        prev = cs[i - 1] if i > 0 else None
        nxt = cs[i + 1] if i + 1 < len(cs) else None

        def deficit(c: Cue = c) -> float:
            return style.min_duration - (c.end - c.start)

        if deficit() <= 1e-9:
            i += 1
            continue
        limit = nxt.start if nxt else (duration or c.start + style.min_duration)
        c.end = max(c.end, min(c.start + style.min_duration, limit))
        if deficit() > 1e-9 and prev is not None:  # silence before it
            c.start -= max(0.0, min(deficit(), c.start - prev.end))
        if deficit() > 1e-9:
            for a, b, at in ((prev, c, i - 1), (c, nxt, i)):
                merged = _merge(a, b, style) if a is not None and b is not None else None
                if merged is not None:
                    cs[at : at + 2] = [merged]
                    i = at  # the merged cue is checked again
                    break
            else:
                if nxt is not None:
                    take = min(deficit(), max(0.0, nxt.end - nxt.start - style.min_duration))
                    c.end = nxt.start = nxt.start + take
                if deficit() > 1e-9 and prev is not None:
                    take = min(deficit(), max(0.0, prev.end - prev.start - style.min_duration))
                    c.start = prev.end = prev.end - take
                if deficit() > 1e-9 and nxt is not None:
                    # Speech too dense for the lines asked for: show this cue its minimum and
                    # push the next one later (the lag is absorbed at the next pause).
                    c.end = c.start + style.min_duration
                    nxt.start = c.end
                    nxt.end = max(nxt.end, nxt.start)
                i += 1
            continue
        i += 1


def _merge(a: Cue, b: Cue, style: CueStyle) -> Cue | None:
    if a.speaker != b.speaker:
        return None
    lines = layout([*a.words, *b.words], a.prefix, style)
    if lines is None:
        return None
    return Cue(a.start, max(a.end, b.end), a.speaker, lines, [*a.words, *b.words], a.prefix)


def cues(t: Transcript, style: CueStyle = DEFAULT_STYLE) -> list[Cue]:
    """Subtitle cues for reading: ≤ `max_line_count` lines of ≤ `max_line_width` characters
    (the `[Speaker] ` label counted), never across a speaker change, cut at sentence ends and
    pauses, each on screen ≥ `min_duration` seconds (except the recording's last fragment)."""
    show = _speakers_known(t)
    out: list[Cue] = []
    for turn in t.turns:
        name = t.speaker_name(turn.speaker)
        prefix = _prefix(name, show, style)
        words = [
            w for w in (turn.words or [Word(turn.start, turn.end, turn.text)]) if w.text.strip()
        ]
        out.extend(_turn_cues(words, name, prefix, style))
    out.sort(key=lambda c: c.start)
    # Recognisers' word times overlap by tens of ms ("à" 84.19–84.64, "Donc..." 84.28–84.70,
    # "objets" 84.64–85.28 on real radio), so a cue could end after the next one starts: end
    # it there (players may show overlapping cues together or drop one).
    for c, nxt in itertools.pairwise(out):
        c.end = max(c.start, min(c.end, nxt.start))
    _enforce_min_duration(out, style, t.duration or None)
    for c in out:  # to the millisecond the formats write, so sums of floats don't show
        c.start, c.end = round(c.start, 3), round(c.end, 3)
    return out


def _speakers_known(t: Transcript) -> bool:
    return any(turn.speaker for turn in t.turns)


def to_srt(t: Transcript, style: CueStyle = DEFAULT_STYLE) -> str:
    show = _speakers_known(t)
    blocks = []
    for i, c in enumerate(cues(t, style), start=1):
        lines = [sanitize.srt_text(x) for x in c.lines]
        if show and c.prefix:
            lines[0] = sanitize.srt_text(c.prefix) + lines[0]
        text = "\n".join(lines)
        blocks.append(f"{i}\n{clock(c.start)} --> {clock(c.end)}\n{text}\n")
    return "\n".join(blocks)


def to_vtt(t: Transcript, style: CueStyle = DEFAULT_STYLE) -> str:
    out = ["WEBVTT", ""]
    for c in cues(t, style):
        lines = [sanitize.vtt_text(x) for x in c.lines]
        voice = sanitize.vtt_voice(c.speaker) if c.speaker else ""
        if voice:
            lines[0] = f"<v {voice}>{lines[0]}"
        out += [f"{clock(c.start, '.')} --> {clock(c.end, '.')}", *lines, ""]
    return "\n".join(out)


def _paragraph(t: Transcript, turn: Turn, md: bool) -> str:
    esc = sanitize.markdown if md else sanitize.terminal
    name = t.speaker_name(turn.speaker)
    who = (f"**{esc(name)}**" if md else esc(name)) if name else None
    text = esc(turn.text)
    return f"[{hms(turn.start)}] {who}: {text}" if who else f"[{hms(turn.start)}] {text}"


def to_txt(t: Transcript) -> str:
    r = t.recording
    head = f"{sanitize.terminal(r.title)}\n{sanitize.terminal(r.webpage_url or r.source)}\n\n"
    return head + "\n\n".join(_paragraph(t, turn, md=False) for turn in t.turns) + "\n"


def to_md(t: Transcript) -> str:
    r = t.recording
    meta = " · ".join(x for x in (r.channel, r.upload_date, hms(t.duration)) if x)
    link = r.webpage_url or r.source
    where = f"<{sanitize.url(link)}>" if "://" in link else sanitize.markdown(link)
    head = f"# {sanitize.markdown(r.title)}\n\n{sanitize.markdown(meta)}  \n{where}\n\n"
    return head + "\n\n".join(_paragraph(t, turn, md=True) for turn in t.turns) + "\n"


def to_rttm(t: Transcript) -> str:
    """NIST RTTM speaker segments (from diarization, else from the turns), with display names."""
    from confindex.evaluation.der import to_rttm as rttm

    segs = t.diarization or speaker_segments_from_turns(t.turns)
    named = [SpeakerSegment(s.start, s.end, t.speaker_name(s.speaker) or s.speaker) for s in segs]
    return rttm(named, t.id)


def render(
    t: Transcript, fmt: str, style: CueStyle = DEFAULT_STYLE, root: Path | None = None
) -> str:
    """The transcript in one of the text FORMATS (`style` shapes srt/vtt cues; `root`, the
    workspace, lets the QDA formats point at the media). Binary formats: `render_bytes`."""
    from confindex.formats import qda
    from confindex.speech.quality import collapse_loops

    if fmt in BINARY_FORMATS:
        raise InputError(f"{fmt} is a binary format: write it to a file (-o FILE)")
    if fmt != "json":  # a repetition loop is read once, with a marker; the JSON keeps it all
        t = collapse_loops(t)
    if fmt in QDA_FORMATS:
        out = qda.render(t, fmt, root)
        assert isinstance(out, str)
        return out
    renderers = {
        "srt": lambda tr: to_srt(tr, style),
        "vtt": lambda tr: to_vtt(tr, style),
        "txt": to_txt,
        "md": to_md,
        "rttm": to_rttm,
        "json": lambda tr: sanitize.json_text(tr.to_json()) + "\n",
    }
    if fmt not in renderers:
        raise InputError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    return renderers[fmt](t)


def render_bytes(
    t: Transcript, fmt: str, style: CueStyle = DEFAULT_STYLE, root: Path | None = None
) -> bytes:
    """Any of FORMATS as the bytes of its file (UTF-8 for the text ones)."""
    from confindex.formats import qda
    from confindex.speech.quality import collapse_loops

    if fmt in BINARY_FORMATS:
        out = qda.render(collapse_loops(t), fmt, root)
        assert isinstance(out, bytes)
        return out
    return render(t, fmt, style, root).encode("utf-8")


def parse_formats(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """`srt,vtt` / `all` / `none` (or a list) → the export formats `fetch` writes."""
    if value is None:
        return list(WRITTEN_BESIDE)
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [x.strip().lower().lstrip(".") for x in items if x.strip()]
    if names in (["all"], []):
        return list(WRITTEN_BESIDE) if names else []
    if names == ["none"]:
        return []
    bad = [n for n in names if n not in WRITABLE]
    if bad:
        raise InputError(
            f"unknown export format {bad[0]!r}: use all, none or some of {','.join(WRITABLE)}"
        )
    return list(dict.fromkeys(names))
