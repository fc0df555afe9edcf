"""Transcript → subtitle and text formats: srt, vtt, txt, md, rttm, json. Pure rendering."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from . import sanitize
from .errors import InputError
from .timefmt import clock, hms
from .transcript import SpeakerSegment, Transcript, Turn, Word
from .turns import join_words, speaker_segments_from_turns
from .workspace import Workspace, atomic_write_text

FORMATS = ("srt", "vtt", "txt", "md", "rttm", "json")
WRITTEN_BESIDE = ("srt", "vtt", "txt", "md", "rttm")  # json is the transcript itself

# Subtitle cues: short enough to read, never across a speaker change.
CUE_MAX_SECONDS = 7.0
CUE_MAX_CHARS = 84


@dataclass
class Cue:
    start: float
    end: float
    speaker: str | None
    text: str


def cues(t: Transcript) -> Iterator[Cue]:
    """Split each turn into subtitle-sized cues, breaking at sentence ends when possible."""
    for turn in t.turns:
        name = t.speaker_name(turn.speaker)
        words = turn.words or [Word(turn.start, turn.end, turn.text)]
        chunk: list[Word] = []
        for w in words:
            if chunk:
                text_len = len(join_words([*chunk, w]))
                too_long = w.end - chunk[0].start > CUE_MAX_SECONDS or text_len > CUE_MAX_CHARS
                if too_long or (chunk[-1].text.endswith((".", "?", "!")) and len(chunk) >= 4):
                    yield Cue(chunk[0].start, chunk[-1].end, name, join_words(chunk))
                    chunk = []
            chunk.append(w)
        if chunk:
            yield Cue(chunk[0].start, chunk[-1].end, name, join_words(chunk))


def _speakers_known(t: Transcript) -> bool:
    return any(turn.speaker for turn in t.turns)


def to_srt(t: Transcript) -> str:
    show = _speakers_known(t)
    blocks = []
    for i, c in enumerate(cues(t), start=1):
        text = sanitize.srt_text(c.text)
        if show and c.speaker:
            text = f"[{sanitize.srt_text(c.speaker)}] {text}"
        blocks.append(f"{i}\n{clock(c.start)} --> {clock(c.end)}\n{text}\n")
    return "\n".join(blocks)


def to_vtt(t: Transcript) -> str:
    lines = ["WEBVTT", ""]
    for c in cues(t):
        text = sanitize.vtt_text(c.text)
        voice = sanitize.vtt_voice(c.speaker) if c.speaker else ""
        if voice:
            text = f"<v {voice}>{text}"
        lines += [f"{clock(c.start, '.')} --> {clock(c.end, '.')}", text, ""]
    return "\n".join(lines)


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
    from .der import to_rttm as rttm

    segs = t.diarization or speaker_segments_from_turns(t.turns)
    named = [SpeakerSegment(s.start, s.end, t.speaker_name(s.speaker) or s.speaker) for s in segs]
    return rttm(named, t.id)


def render(t: Transcript, fmt: str) -> str:
    """The transcript in one of FORMATS."""
    renderers = {
        "srt": to_srt,
        "vtt": to_vtt,
        "txt": to_txt,
        "md": to_md,
        "rttm": to_rttm,
        "json": lambda tr: sanitize.json_text(tr.to_json()) + "\n",
    }
    if fmt not in renderers:
        raise InputError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    return renderers[fmt](t)


def write_exports(ws: Workspace, t: Transcript) -> list[str]:
    """Write .srt .vtt .txt .md .rttm beside the transcript JSON (atomically); returns paths."""
    paths = []
    for fmt in WRITTEN_BESIDE:
        path = ws.transcripts / f"{t.id}.{fmt}"
        atomic_write_text(path, render(t, fmt))
        paths.append(str(path))
    return paths
