"""The user's corrections end to end: read a version, change it (store/edits.py), time new
words against the audio (speech/align.py), save it with a version check (store/history.py).

`expect` is the version (etag) the caller's change was made from: the web page sends the one
it loaded; the CLI and a script that passes None get the version read here, so that a writer
that saved meanwhile (another tab, a re-transcription) still makes it a conflict.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confindex.errors import InputError
from confindex.store import edits
from confindex.store.history import Saved, load_versioned
from confindex.store.store import Store
from confindex.store.transcript import Change, Transcript
from confindex.store.workspace import Workspace

log = logging.getLogger(__name__)


def _apply(
    ws: Workspace,
    ref: str,
    fn: Callable[[Transcript], tuple[Transcript, Change]],
    expect: str | None,
    index: bool,
) -> Saved:
    t, version = load_versioned(ws, ref)
    if expect is not None and expect != version:
        from confindex.errors import ConflictError

        raise ConflictError(
            f"{t.id} was changed by someone else since you opened it: reload it and make "
            "your change again; nothing was saved"
        )
    new, change = fn(t)
    saved = Store(ws).save_change(new, expect=version, index=index)
    log.info("%s: %s %s", new.id, change.kind, change.summary)
    return Saved(new, change, saved, index)


def edit(
    ws: Workspace,
    ref: str,
    span: tuple[float, float],
    text: str,
    *,
    expect: str | None = None,
    model: str | None = None,
    align: bool = True,
    index: bool = True,
) -> Saved:
    """Replace the words starting in `span` by `text`, timed by forced alignment on the
    recording's audio when it is there (else spread over the span, `estimated`)."""
    texts = edits.split_text(text)
    t, version = load_versioned(ws, ref)
    start, end = span
    if expect is None:
        expect = version
    times = probs = None
    if align:
        times, probs = _align(ws, t, start, end, texts, model)

    def change(cur: Transcript) -> tuple[Transcript, Change]:
        return edits.replace_words(cur, start, end, texts, times, probs)

    return _apply(ws, t.id, change, expect, index)


def _align(
    ws: Workspace, t: Transcript, start: float, end: float, texts: list[str], model: str | None
) -> tuple[list[tuple[float, float]] | None, list[float] | None]:
    from confindex.errors import MediaError
    from confindex.speech import align

    media = align.media_path(ws, t)
    if media is None:
        log.info("%s: no media, the new words' times are estimated", t.id)
        return None, None
    plan = edits.plan_edit(t, start, end)
    lo = min([plan.lo, *(w.start for w in plan.before)])
    hi = max([plan.hi, *(w.end for w in plan.after)])
    try:
        samples = align.decode_stretch(media, lo, hi)
    except MediaError as exc:
        log.warning("%s: %s; the new words' times are estimated", t.id, exc.message)
        return None, None
    if samples.size < align.SAMPLE_RATE // 10:
        return None, None
    from confindex.speech.asr import load_model

    fn = align.whisper_alignment(load_model(model))
    if fn is None:  # an engine that cannot align given words: estimated times
        return None, None
    return align.time_edit(samples, lo, plan, texts, fn)


def edit_turn(
    ws: Workspace,
    ref: str,
    turn_id: int,
    text: str,
    *,
    expect: str | None = None,
    model: str | None = None,
    align: bool = True,
    index: bool = True,
) -> Saved:
    """A turn's whole text as the user retyped it (the web page's edit mode): only the words
    that differ are replaced (a word diff), each changed run timed as `edit` times it; one
    change in the history."""
    import difflib

    t, version = load_versioned(ws, ref)
    if expect is None:
        expect = version
    turn = next((x for x in t.turns if x.id == turn_id), None)
    if turn is None:
        raise InputError(f"no turn {turn_id} in {t.id}")
    old = [w for w in turn.words if w.text.strip()]
    new = text.split()
    ops = difflib.SequenceMatcher(a=[w.text.strip() for w in old], b=new, autojunk=False)
    cur = t
    runs: list[str] = []  # the one-line diff: only the words that changed
    for tag, i1, i2, j1, j2 in reversed(ops.get_opcodes()):
        if tag == "equal":
            continue
        was = " ".join(w.text.strip() for w in old[i1:i2])
        runs.insert(0, edits.diff_line(was, " ".join(new[j1:j2])))
        if i1 < i2:
            start, end = old[i1].start, old[i2 - 1].start
        else:  # an insertion: between the neighbours
            start = old[i1 - 1].end if i1 > 0 else turn.start
            end = old[i1].start if i1 < len(old) else turn.end
            start, end = min(start, end), max(start, end)
        texts = new[j1:j2]
        times = probs = None
        if align and texts:
            times, probs = _align(ws, cur, start, end, texts, model)
        cur, _change = edits.replace_words(cur, start, end, texts, times, probs)
    if cur is t:
        raise InputError("the text is unchanged: nothing to save")
    change = Change(
        edits.now(), "edit",
        f"turn {turn_id} {edits.fmt_span(turn.start, turn.end)} {'; '.join(runs)}",
        turn.start, turn.end,
    )  # fmt: skip
    cur.changes = [*t.changes, change]
    return _apply(ws, t.id, lambda _t: (cur, change), expect, index)


def merge(
    ws: Workspace, ref: str, label: str, others: list[str], *, expect: str | None = None
) -> Saved:
    saved = _apply(ws, ref, lambda t: edits.merge_speakers(t, label, others), expect, True)
    _sync_voices(ws, saved.transcript)
    return saved


def assign(
    ws: Workspace, ref: str, span: tuple[float, float], label: str, *,
    expect: str | None = None,
) -> Saved:  # fmt: skip
    label = " ".join(label.split())
    if not label:
        raise InputError("give the speaker label to assign the span to")

    return _apply(ws, ref, lambda t: edits.assign_span(t, *span, label), expect, True)


def set_meta(
    ws: Workspace, ref: str, values: dict[str, Any], *, expect: str | None = None
) -> Saved:
    edits.check_meta(values)  # before anything is read or locked
    return _apply(ws, ref, lambda t: edits.set_meta(t, values), expect, True)


class Corrections:
    """The Archive's correction methods (api.py's `Archive` inherits them): each returns a
    Saved (transcript, change, version); `expect` is the version the change was made from
    (ConflictError when it moved on)."""

    ws: Workspace

    def recording(self, ref: str | Transcript) -> Transcript:  # Archive's
        raise NotImplementedError

    def _span(self, recording: str, span: str) -> tuple[float, float]:
        from confindex.timefmt import parse_span

        return parse_span(span, self.recording(recording).duration or None)

    def version(self, recording: str) -> str:
        """The version (etag) of a recording's transcript as saved now."""
        return load_versioned(self.ws, recording)[1]

    def edit(
        self, recording: str, span: str, text: str, *, expect: str | None = None, **kw: Any
    ) -> Saved:
        """Replace the words starting in `span` ("57.2-59", "0:57.2-0:59") by `text`, timed
        by forced alignment on the audio (`model=`, `align=False`: spread, estimated)."""
        return edit(self.ws, recording, self._span(recording, span), text, expect=expect, **kw)

    def changes(self, recording: str) -> list[Change]:
        """The change log of a recording, oldest first (`confindex history`)."""
        return list(self.recording(recording).changes)

    def merge_speakers(
        self, recording: str, label: str, *others: str, expect: str | None = None
    ) -> Saved:
        """The speakers `others` become `label` everywhere (turns, exports, voice library)."""
        return merge(self.ws, recording, label, list(others), expect=expect)

    def assign_speaker(
        self, recording: str, span: str, label: str, *, expect: str | None = None
    ) -> Saved:
        """The words starting in `span` are said by `label` (new if unknown): turns split."""
        return assign(self.ws, recording, self._span(recording, span), label, expect=expect)

    def set_meta(self, recording: str, *, expect: str | None = None, **values: Any) -> Saved:
        """Set title, date (YYYY[-MM[-DD]]), channel, url, doi, authors ('' clears one)."""
        return set_meta(self.ws, recording, values, expect=expect)

    def meta(self, recording: str) -> edits.RecordingMeta:
        """What citations use: title, date, channel, url, doi, authors."""
        return edits.effective_meta(self.recording(recording))


def _sync_voices(ws: Workspace, t: Transcript) -> None:
    """The voice library follows the merged names (voices.sync), best effort."""
    from confindex.errors import ConfindexError

    try:
        Store(ws).sync_voices(t)
    except ConfindexError as exc:
        log.warning("voice library not updated for %s: %s", t.id, exc.message)
