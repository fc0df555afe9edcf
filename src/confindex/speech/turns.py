"""Words (+ optional speaker segments) → speaker turns. Pure functions: no model, no I/O.

A turn is what one speaker said without interruption. So that a search hit points close to the
spoken words, a turn never spans a long pause and never grows past ~60 s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from confindex.store.transcript import Segment, SpeakerSegment, Turn, Word

MAX_PAUSE = 2.0  # seconds of silence that always end a turn
MAX_TURN = 60.0  # seconds after which a turn ends at the next sentence end
HARD_MAX_TURN = 90.0  # ... or anyway, if the speaker never ends a sentence
SENTENCE_END = (".", "?", "!", "…", "。", "？", "！")

LanguageFn = Callable[[str], str | None]


def words_of(segments: Iterable[Segment]) -> list[Word]:
    """All words in time order; a segment without word timings becomes one pseudo-word."""
    out: list[Word] = []
    for s in segments:
        if s.words:
            out.extend(replace(w) for w in s.words)
        elif s.text.strip():
            out.append(Word(start=s.start, end=s.end, text=s.text.strip()))
    out.sort(key=lambda w: (w.start, w.end))
    return out


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def assign_speakers(words: Sequence[Word], speakers: Sequence[SpeakerSegment]) -> list[Word]:
    """Give each word the speaker whose segment overlaps it most (nearest segment if none)."""
    if not speakers:
        return [replace(w, speaker=None) for w in words]
    segs = sorted(speakers, key=lambda s: s.start)
    out: list[Word] = []
    lo = 0
    for w in words:
        # Segments are sorted by start; skip those that ended long before this word.
        while lo < len(segs) and segs[lo].end < w.start - 30.0:
            lo += 1
        best, best_ov = None, 0.0
        for s in segs[lo:]:
            if s.start > w.end:
                break
            ov = overlap(w.start, w.end, s.start, s.end)
            if ov > best_ov:
                best, best_ov = s, ov
        if best is None:
            mid = (w.start + w.end) / 2
            best = min(
                segs,
                key=lambda s: (
                    0.0 if s.start <= mid <= s.end else min(abs(mid - s.start), abs(mid - s.end))
                ),
            )
        out.append(replace(w, speaker=best.speaker))
    return out


def relabel_by_first_appearance(words: Sequence[Word]) -> tuple[list[Word], dict[str, str]]:
    """Rename speakers SPEAKER_00, SPEAKER_01… in the order they first speak."""
    mapping: dict[str, str] = {}
    for w in words:
        if w.speaker is not None and w.speaker not in mapping:
            mapping[w.speaker] = f"SPEAKER_{len(mapping):02d}"
    return [
        replace(w, speaker=mapping.get(w.speaker) if w.speaker else None) for w in words
    ], mapping


def complete_mapping(mapping: dict[str, str], labels: Iterable[str]) -> dict[str, str]:
    """`mapping` extended to speakers who said no word (diarization found them, Whisper heard
    nothing), numbered after the others: left under their old label they could take the name
    of a speaker who spoke (SPEAKER_01 silent, SPEAKER_02 renamed SPEAKER_01), and their
    segments and voiceprint would pass for that speaker's."""
    out = dict(mapping)
    for label in labels:
        if label not in out:
            out[label] = f"SPEAKER_{len(out):02d}"
    return out


def join_words(words: Iterable[Word]) -> str:
    """Whisper words carry their own leading punctuation; join with single spaces."""
    return " ".join(w.text.strip() for w in words if w.text.strip())


def _ends_sentence(word: Word) -> bool:
    return word.text.rstrip("\"'»”)").endswith(SENTENCE_END)


def build_turns(
    words: Sequence[Word],
    language: str | None = None,
    *,
    max_pause: float = MAX_PAUSE,
    max_turn: float = MAX_TURN,
    hard_max_turn: float = HARD_MAX_TURN,
    language_of: LanguageFn | None = None,
    word_languages: Sequence[str | None] | None = None,
) -> list[Turn]:
    """Group time-ordered words into turns.

    A new turn starts when the speaker changes, after a pause longer than `max_pause`, at the
    first sentence end once a turn is longer than `max_turn`, or at `hard_max_turn` regardless.
    `word_languages` (one per word, the language it was decoded in) also starts a new turn
    where it changes and names the turn's language; else `language_of(text)` may name it
    (mixed-language panels); else `language`.
    """
    langs = list(word_languages) if word_languages is not None else [None] * len(words)
    groups: list[list[Word]] = []
    group_langs: list[str | None] = []
    current: list[Word] = []
    for w, lang in zip(words, langs, strict=True):
        if current:
            prev = current[-1]
            length = w.end - current[0].start
            if (
                w.speaker != prev.speaker
                or lang != group_langs[-1]
                or w.start - prev.end > max_pause
                or (length > max_turn and _ends_sentence(prev))
                or length > hard_max_turn
            ):
                groups.append(current)
                current = []
        if not current:
            group_langs.append(lang)
        current.append(w)
    if current:
        groups.append(current)

    turns = []
    for i, (g, decoded) in enumerate(zip(groups, group_langs, strict=True)):
        text = join_words(g)
        lang = decoded or (language_of(text) if language_of else None) or language
        turns.append(
            Turn(
                id=i,
                start=g[0].start,
                end=max(w.end for w in g),
                speaker=g[0].speaker,
                text=text,
                language=lang,
                words=list(g),
            )
        )
    return turns


def speaker_segments_from_turns(turns: Iterable[Turn]) -> list[SpeakerSegment]:
    """The turns as diarization-style segments (for RTTM of transcripts without diarization)."""
    return [SpeakerSegment(t.start, t.end, t.speaker) for t in turns if t.speaker]


def word_languages(words: Sequence[Word], segments: Sequence[Segment]) -> list[str | None]:
    """The language each word was decoded in: that of the segment the word came from (a
    segment without word timings: the one holding the pseudo-word's middle)."""
    by_word = {(w.start, w.end, w.text): s.language for s in segments for w in s.words}
    out: list[str | None] = []
    for w in words:
        key = (w.start, w.end, w.text)
        if key in by_word:
            out.append(by_word[key])
            continue
        mid = (w.start + w.end) / 2
        holding = [s for s in segments if s.start <= mid <= s.end]
        out.append(holding[0].language if holding else None)
    return out


def language_by_overlap(turn: Turn, segments: Sequence[Segment]) -> str | None:
    """The language of the segments that overlap `turn` the most (mixed-language recordings)."""
    totals: dict[str, float] = {}
    for s in segments:
        if s.language and s.end > turn.start and s.start < turn.end:
            ov = overlap(turn.start, turn.end, s.start, s.end)
            totals[s.language] = totals.get(s.language, 0.0) + ov
    return max(totals, key=totals.__getitem__) if totals else turn.language


def carry_names(old: Sequence[Turn], new: Sequence[Turn], names: dict[str, str]) -> dict[str, str]:
    """Speaker names for a re-diarized transcript: each named old speaker's name goes to the
    new label that overlaps that speaker's turns the most (labels may be renumbered)."""
    carried: dict[str, str] = {}
    for label, name in names.items():
        talk: dict[str, float] = {}
        for o in (t for t in old if t.speaker == label):
            for n in new:
                if n.speaker and n.start < o.end and o.start < n.end:
                    talk[n.speaker] = talk.get(n.speaker, 0.0) + overlap(
                        o.start, o.end, n.start, n.end
                    )
        if talk:
            best = max(talk, key=talk.__getitem__)
            carried.setdefault(best, name)
    return carried


# Shorter shared stretches are boundary jitter between two turns, not two people at once.
MIN_OVERLAP = 0.2


def mark_overlaps(
    turns: Sequence[Turn], speakers: Sequence[SpeakerSegment], min_overlap: float = MIN_OVERLAP
) -> list[Turn]:
    """Each turn with `overlap` set to the other speakers whose diarization segments run at the
    same time as its own speaker's, inside the turn, for at least `min_overlap` s in all."""
    by: dict[str, list[tuple[float, float]]] = {}
    for s in speakers:
        by.setdefault(s.speaker, []).append((s.start, s.end))
    out = []
    for t in turns:
        own = [
            (max(a, t.start), min(b, t.end))
            for a, b in by.get(t.speaker or "", [])
            if a < t.end and t.start < b
        ]
        heard = []
        for label, spans in by.items():
            if label == t.speaker or not own:
                continue
            shared = sum(overlap(a, b, c, d) for a, b in own for c, d in spans)
            if shared >= min_overlap:
                heard.append(label)
        out.append(replace(t, overlap=sorted(heard)))
    return out


def overlapped(
    speakers: Sequence[SpeakerSegment], min_overlap: float = MIN_OVERLAP
) -> list[tuple[float, float, list[str]]]:
    """The stretches (at least `min_overlap` s) where two or more speakers talk at once, with
    who (sorted labels): for exports that show overlapped speech."""
    events = sorted(
        [(s.start, 1, s.speaker) for s in speakers if s.end > s.start]
        + [(s.end, -1, s.speaker) for s in speakers if s.end > s.start],
        key=lambda e: (e[0], e[1]),
    )
    active: dict[str, int] = {}
    out: list[tuple[float, float, list[str]]] = []
    prev = None
    for t, kind, label in events:
        if prev is not None and t > prev:
            who = sorted(k for k, n in active.items() if n > 0)
            if len(who) >= 2:
                if out and abs(out[-1][1] - prev) < 1e-9 and out[-1][2] == who:
                    out[-1] = (out[-1][0], t, who)
                else:
                    out.append((prev, t, who))
        active[label] = active.get(label, 0) + kind
        prev = t
    return [o for o in out if o[1] - o[0] >= min_overlap]
