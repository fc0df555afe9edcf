"""Manual corrections of a transcript, as pure functions over `Transcript` (issue 27).

Every function returns a new transcript (the input is not modified) and the `Change` that
`confindex history` lists. Writing, versions and the index are the store's business
(store/history.py); timing new words against the audio is speech/align.py's.

- `replace_words`: the words that start in [A, B] become the user's words (marked
  `verified`), timed by the caller (alignment) or spread over the span (`estimated`);
- `merge_speakers`, `assign_span`: speaker labels, turns split at word boundaries;
- `set_meta` / `apply_meta`: user metadata over what yt-dlp or the file gave;
- `carry_edits`: a new transcription of the recording keeps the verified words.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypedDict

from confindex.errors import InputError
from confindex.store.transcript import META_KEYS, Change, Transcript, Turn, Word

CONTEXT = 1.0  # seconds of unchanged words each side of an edit given to the aligner
DIFF_WIDTH = 60  # characters of each side in a one-line diff
SLIVER = 0.25  # seconds: diarization left over by `assign` shorter than this is dropped


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def words_of(t: Transcript) -> list[Word]:
    return [w for turn in t.turns for w in turn.words]


def split_text(text: str) -> list[str]:
    """The user's text as words (whitespace-separated); an InputError when there are none
    (deleting words is a replacement by nothing: not through `edit --text ""`)."""
    words = text.split()
    if not words:
        raise InputError("--text is empty: give the words that were said")
    return words


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DIFF_WIDTH else text[: DIFF_WIDTH - 1] + "…"


def diff_line(old: str, new: str) -> str:
    """`"old words" → "new words"` on one line (each side cut to DIFF_WIDTH)."""
    return f'"{_short(old)}" → "{_short(new)}"'


def _t(seconds: float) -> str:
    m, s = divmod(max(0.0, seconds), 60)
    return f"{int(m)}:{s:04.1f}"


def fmt_span(start: float, end: float) -> str:
    return f"{_t(start)}–{_t(end)}"


@dataclass
class EditPlan:
    """What an edit replaces and the unchanged words around it (for the aligner)."""

    start: float
    end: float
    removed: list[Word]
    before: list[Word]  # context words before (in order), at most CONTEXT seconds
    after: list[Word]  # context words after
    lo: float  # the new words lie within [lo, hi]: between the kept neighbours
    hi: float
    speaker: str | None
    language: str | None


def plan_edit(t: Transcript, start: float, end: float, context: float = CONTEXT) -> EditPlan:
    """Which words [start, end] replaces (those starting in it) and what surrounds them."""
    ws = words_of(t)
    removed = [w for w in ws if start <= w.start <= end]
    prev = [w for w in ws if w.start < start]
    nxt = [w for w in ws if w.start > end]
    lo = max([start - context, *(w.end for w in prev[-1:])]) if prev else max(0.0, start - 0.5)
    lo = min(lo, start)
    hi_candidates = [w.start for w in nxt[:1]]
    hi = min([end + context, *hi_candidates]) if nxt else end + 0.5
    if t.duration:
        hi = min(hi, t.duration)
    hi = max(hi, min(end, t.duration or end))
    if removed:  # the old words' extent: what was heard there
        lo = min(lo, removed[0].start)
        hi = max(hi, max(w.end for w in removed))
    before = [w for w in prev if w.start >= start - context][-6:]
    after = [w for w in nxt if w.end <= end + context][:6]
    turn = _turn_at(t, removed[0].start if removed else start)
    speaker = removed[0].speaker if removed and removed[0].speaker else None
    speaker = speaker or (turn.speaker if turn else None)
    language = (turn.language if turn else None) or t.language
    return EditPlan(start, end, removed, before, after, lo, hi, speaker, language)


def _turn_at(t: Transcript, time: float) -> Turn | None:
    best = None
    for turn in t.turns:
        if turn.start <= time <= turn.end:
            return turn
        if turn.start <= time:
            best = turn
    return best or (t.turns[0] if t.turns else None)


def spread(texts: Sequence[str], lo: float, hi: float) -> list[tuple[float, float]]:
    """Times for words with no audio to align to: [lo, hi] shared by character count."""
    weights = [len(x) + 1 for x in texts]
    total = sum(weights) or 1
    out, at = [], lo
    for wgt in weights:
        d = (hi - lo) * wgt / total
        out.append((round(at, 3), round(at + d, 3)))
        at += d
    return out


def replace_words(
    t: Transcript,
    start: float,
    end: float,
    texts: Sequence[str],
    times: Sequence[tuple[float, float]] | None = None,
    probabilities: Sequence[float] | None = None,
) -> tuple[Transcript, Change]:
    """`t` with the words starting in [start, end] replaced by `texts`, all `verified`.

    `times` (one (start, end) per new word, from alignment) or None: the words are spread
    over the span between the kept neighbours and marked `estimated`. Unchanged words keep
    their times; the new words go into the turn of the first replaced word (else of `start`)
    and get its speaker; turns left empty go. No `texts`: the words are deleted.
    """
    plan = plan_edit(t, start, end)
    estimated = times is None
    if times is None:
        times = spread(
            texts,
            max(plan.lo, start) if not plan.removed else plan.removed[0].start,
            min(plan.hi, end)
            if not plan.removed
            else max(plan.removed[-1].end, plan.removed[0].start),
        )
    if len(times) != len(texts):
        raise ValueError("one time per word")
    probs = probabilities or [1.0] * len(texts)
    new_words = [
        Word(round(a, 3), round(max(a, b), 3), " " + x, round(float(p), 3), plan.speaker,
             verified=True, estimated=estimated)
        for x, (a, b), p in zip(texts, times, probs, strict=True)
    ]  # fmt: skip
    out = copy.deepcopy(t)
    gone = {id(w) for w in plan.removed}
    target: Turn | None = None
    for src, turn in zip(t.turns, out.turns, strict=True):
        keep = [c for o, c in zip(src.words, turn.words, strict=True) if id(o) not in gone]
        if target is None and len(keep) < len(turn.words):
            target = turn
        turn.words = keep
    if target is None:
        target = _turn_at(out, start)
    if target is None and new_words:  # an empty transcript: the words are its first turn
        target = Turn(0, new_words[0].start, new_words[-1].end, plan.speaker, "", t.language)
        out.turns.append(target)
    if target is not None:
        target.words = sorted([*target.words, *new_words], key=lambda w: (w.start, w.end))
    out.turns = _renumber([x for x in out.turns if x.words])
    old_text = " ".join(w.text.strip() for w in plan.removed)
    change = Change(now(), "edit", f"{fmt_span(start, end)} {diff_line(old_text, ' '.join(texts))}",
                    start, end)  # fmt: skip
    out.changes.append(change)
    return out, change


def _renumber(turns: list[Turn]) -> list[Turn]:
    from confindex.speech.turns import join_words

    out = []
    for i, turn in enumerate(turns):
        turn.id = i
        if turn.words:
            turn.words.sort(key=lambda w: (w.start, w.end))
            turn.start = turn.words[0].start
            turn.end = max(w.end for w in turn.words)
            turn.text = join_words(turn.words)
        out.append(turn)
    return out


def labels(t: Transcript) -> list[str]:
    seen: dict[str, None] = {}
    for x in (*t.turns, *t.diarization):
        if x.speaker:
            seen.setdefault(x.speaker)
    return list(seen)


def merge_speakers(t: Transcript, label: str, others: Sequence[str]) -> tuple[Transcript, Change]:
    """`others` become `label` everywhere: turns, words, diarization; adjacent turns of the
    one speaker join. The name of `label` stays (else the first other's user name)."""
    known = labels(t)
    for lab in (label, *others):
        if lab not in known:
            raise InputError(f"no speaker {lab!r} in {t.id} (speakers: {', '.join(known)})")
    others = [o for o in dict.fromkeys(others) if o != label]
    if not others:
        raise InputError("merge needs another speaker than the one merged into")
    out = copy.deepcopy(t)
    into = set(others)

    def relabel(x):
        if x.speaker in into:
            x.speaker = label

    for turn in out.turns:
        relabel(turn)
        for w in turn.words:
            relabel(w)
        # Speakers heard over this turn (issue 29): the merged labels are `label` now.
        heard = [label if x in into else x for x in getattr(turn, "overlap", [])]
        turn.overlap = [x for x in dict.fromkeys(heard) if x != turn.speaker]
    for seg in out.segments:
        for w in seg.words:
            relabel(w)
    for seg in out.diarization:
        relabel(seg)
    out.diarization = _join_segments(out.diarization)
    out.turns = _join_turns(out.turns)
    prints = [out.voiceprints[x] for x in (label, *others) if x in out.voiceprints]
    if len(prints) > 1:  # the merged voice: the seconds-weighted mean, unit length again
        out.voiceprints[label] = _mean_voice(prints)
    if label not in out.speakers:
        name = next((out.speakers[o] for o in others if o in out.speakers
                     and o not in out.auto_names), None)  # fmt: skip
        if name:
            out.speakers[label] = name
    for o in others:
        out.speakers.pop(o, None)
        out.auto_names.pop(o, None)
        out.voiceprints.pop(o, None)  # recomputed for `label` by the caller when it can
        out.rejected_names.pop(o, None)
        if o in out.not_enrolled:
            out.not_enrolled.remove(o)
    names = ", ".join(t.speaker_name(o) or o for o in others)
    change = Change(now(), "merge", f"{names} → {t.speaker_name(label)}")
    out.changes.append(change)
    return out, change


def _mean_voice(prints):
    import numpy as np

    from confindex.store.transcript import Voiceprint

    total = sum(p.seconds for p in prints) or 1.0
    v = sum(np.asarray(p.vector, dtype=np.float64) * (p.seconds / total) for p in prints)
    norm = float(np.linalg.norm(v)) or 1.0
    return Voiceprint([round(float(x) / norm, 6) for x in v], round(total, 2))


def _join_segments(segs):
    out = []
    for s in sorted(segs, key=lambda s: (s.start, s.end)):
        if out and out[-1].speaker == s.speaker and s.start <= out[-1].end + 1e-6:
            out[-1].end = max(out[-1].end, s.end)
        else:
            out.append(s)
    return out


def _join_turns(turns: list[Turn], max_pause: float | None = None) -> list[Turn]:
    """Adjacent turns of one speaker (same language, pause within the turn builder's) join."""
    from confindex.speech.turns import MAX_PAUSE

    gap = MAX_PAUSE if max_pause is None else max_pause
    out: list[Turn] = []
    for turn in turns:
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.speaker == turn.speaker
            and prev.language == turn.language
            and turn.start - prev.end <= gap
            and prev.words
            and turn.words
        ):
            prev.words.extend(turn.words)
        else:
            out.append(turn)
    return _renumber(out)


def assign_span(t: Transcript, start: float, end: float, label: str) -> tuple[Transcript, Change]:
    """The words starting in [start, end] are said by `label` (a new label if it does not
    exist): turns split at those word boundaries, neighbours of the same speaker join."""
    out = copy.deepcopy(t)
    moved = 0
    pieces: list[Turn] = []
    for turn in out.turns:
        groups: list[tuple[bool, list[Word]]] = []
        for w in turn.words:
            inside = start <= w.start <= end
            if inside:
                w.speaker = label
                moved += 1
            if groups and groups[-1][0] == inside:
                groups[-1][1].append(w)
            else:
                groups.append((inside, [w]))
        if not groups:
            pieces.append(turn)
            continue
        for inside, ws in groups:
            pieces.append(replace(turn, speaker=label if inside else turn.speaker, words=ws))
    if not moved:
        raise InputError(f"no words start in {fmt_span(start, end)} of {t.id}")
    # Diarization follows: the span is the label's (for RTTM and voiceprints).
    a = min(w.start for w in words_of(out) if w.speaker == label and start <= w.start <= end)
    b = max(w.end for w in words_of(out) if w.speaker == label and start <= w.start <= end)
    out.diarization = _carve(out.diarization, a, b, label)
    out.turns = _join_turns(pieces, max_pause=0.0 if False else None)
    change = Change(now(), "assign", f"{fmt_span(start, end)} → {t.speaker_name(label) or label}"
                    f" ({moved} words)", start, end)  # fmt: skip
    out.changes.append(change)
    return out, change


def _carve(segs, a: float, b: float, label: str):
    from confindex.store.transcript import SpeakerSegment

    if not segs:
        return segs
    out = []
    for s in segs:
        if s.end <= a or s.start >= b:
            out.append(s)
            continue
        # Slivers left of a segment (a turn's words end 0.1 s before its diarization segment)
        # would keep a speaker alive with no words: under the DER collar (0.25 s) they go.
        if s.start < a - SLIVER:
            out.append(SpeakerSegment(s.start, a, s.speaker))
        if s.end > b + SLIVER:
            out.append(SpeakerSegment(b, s.end, s.speaker))
    out.append(SpeakerSegment(a, b, label))
    return _join_segments(out)


_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


def check_meta(values: dict[str, object]) -> dict[str, object]:
    """Only known keys, a date as YYYY[-MM[-DD]], authors a list of names; '' clears a key."""
    out: dict[str, object] = {}
    for key, value in values.items():
        if key not in META_KEYS:
            raise InputError(f"unknown metadata {key!r} (known: {', '.join(META_KEYS)})")
        if value is None:
            continue
        if key == "authors":
            items = [value] if isinstance(value, str) else list(value)  # type: ignore[call-overload]
            names = [" ".join(str(a).split()) for a in items]
            out[key] = [n for n in names if n]
            continue
        text = " ".join(str(value).split())
        if key == "date" and text:
            if not _DATE.fullmatch(text):
                raise InputError(f"--date {text!r}: give YYYY, YYYY-MM or YYYY-MM-DD")
            try:
                y, m, d = ([*text.split("-"), "01", "01"])[:3]
                dt.date(int(y), int(m), int(d))
            except ValueError:
                raise InputError(f"--date {text!r} is not a date") from None
        if key == "doi" and text:
            text = re.sub(r"^(https?://(dx\.)?doi\.org/|doi:)", "", text, flags=re.I)
            if not re.fullmatch(r"10\.\d{4,9}/\S+", text):
                raise InputError(f"--doi {text!r}: give a DOI like 10.5281/zenodo.123")
        if key == "url" and text and not re.match(r"https?://", text):
            raise InputError(f"--url {text!r}: give an http(s) URL")
        out[key] = text
    return out


def apply_meta(t: Transcript) -> None:
    """Put the user's metadata (t.meta) over the recording's fields, in place: citations,
    exports and search read the recording."""
    m, rec = t.meta, t.recording
    if m.get("title"):
        rec.title = m["title"]
    if m.get("date"):
        rec.upload_date = m["date"]
    if m.get("channel"):
        rec.channel = m["channel"]
    if m.get("url"):
        rec.webpage_url = m["url"]


class RecordingMeta(TypedDict):
    """What citations use (`Archive.meta`, `confindex meta --json`'s "meta"): a plain dict."""

    title: str
    date: str | None  # YYYY[-MM[-DD]]
    channel: str | None
    url: str | None
    doi: str | None
    authors: list[str]


def effective_meta(t: Transcript) -> RecordingMeta:
    """What citations use: the user's metadata over the recording's own fields."""
    rec = t.recording
    return {
        "title": rec.title,
        "date": rec.upload_date,
        "channel": rec.channel or rec.uploader,
        "url": rec.webpage_url,
        "doi": t.meta.get("doi"),
        "authors": list(t.meta.get("authors") or []),
    }


def set_meta(t: Transcript, values: dict[str, object]) -> tuple[Transcript, Change]:
    """`t` with these metadata set ('' or [] clears one): checked, applied, logged."""
    checked = check_meta(values)
    if not checked:
        raise InputError("no metadata given (--title, --date, --channel, --url, --doi, --author)")
    out = copy.deepcopy(t)
    parts = []
    before = effective_meta(t)
    for key, value in checked.items():
        old = before.get(key)
        if value in ("", []):
            out.meta.pop(key, None)
        else:
            out.meta[key] = value
        if old != value:
            shown = "; ".join(value) if isinstance(value, list) else value
            was = "; ".join(old) if isinstance(old, list) else (old or "")
            parts.append(f"{key}: {diff_line(str(was), str(shown))}")
    apply_meta(out)
    change = Change(now(), "meta", ", ".join(parts) or "no change")
    out.changes.append(change)
    return out, change


def verified_spans(t: Transcript, gap: float = 0.5) -> list[tuple[float, float]]:
    """Stretches of verified words (joined across gaps up to `gap` seconds)."""
    spans: list[list[float]] = []
    for w in words_of(t):
        if not w.verified:
            continue
        if spans and w.start - spans[-1][1] <= gap:
            spans[-1][1] = max(spans[-1][1], w.end)
        else:
            spans.append([w.start, w.end])
    return [(a, b) for a, b in spans]


def verified_fraction(t: Transcript) -> float:
    ws = words_of(t)
    return sum(1 for w in ws if w.verified) / len(ws) if ws else 0.0


def carry_edits(old: Transcript, new: Transcript, *, words: bool = True) -> Transcript:
    """`new` (a fresh transcription of the recording) keeping what users did to `old`: the
    verified words (unless not `words`) replace the new words in their stretches (with the
    speaker the new transcript has there), the change log continues and the user metadata
    stays. In place; returns `new`."""
    from confindex.speech.turns import build_turns

    spans = verified_spans(old) if words else []
    what = f", {len(spans)} edited passage(s) kept" if spans else ""
    if not words and verified_spans(old):
        what = ", edits discarded"
    new.changes = [
        *old.changes,
        *new.changes,
        Change(now(), "transcribe", f"new transcription{what}"),
    ]
    if old.meta:
        new.meta = {**old.meta, **new.meta}
        apply_meta(new)
    if not spans:
        return new

    def inside(w: Word) -> bool:
        mid = (w.start + w.end) / 2
        return any(a - 0.05 <= mid <= b + 0.05 for a, b in spans)

    fresh = words_of(new)
    kept = [w for w in fresh if not inside(w)]
    verified = [copy.deepcopy(w) for w in words_of(old) if w.verified]
    for w in verified:
        near = min(fresh, key=lambda x: abs(x.start - w.start), default=None)
        if near is not None and near.speaker:
            w.speaker = near.speaker
    lang = {id(w): turn.language for turn in new.turns for w in turn.words}
    words = sorted([*kept, *verified], key=lambda w: (w.start, w.end))
    langs = [lang.get(id(w)) for w in words]
    for i in range(len(words)):  # verified words take their neighbour's language
        if langs[i] is None:
            langs[i] = langs[i - 1] if i else next((x for x in langs if x), new.language)
    new.turns = build_turns(words, new.language, word_languages=langs)
    return new
