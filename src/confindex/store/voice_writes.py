"""The Store's writes of the voice library (voices.json): a part of `Store` (store.py), kept
in its own file; `speech.voices` only reads and matches."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from confindex.errors import ConfindexError
from confindex.store.transcript import Transcript
from confindex.store.workspace import Workspace, atomic_write_text

if TYPE_CHECKING:
    from confindex.speech.voices import Library

log = logging.getLogger("confindex.store.store")


class VoiceWrites:
    ws: Workspace

    def voices(self) -> Library:
        """The voice library (empty when there is none); a damaged one is rebuilt from the
        transcripts and written again."""
        from confindex.speech import voices

        lib, damaged = voices.read(self.ws)
        if damaged:
            self.save_voices(lib)
        return lib

    def save_voices(self, lib: Library) -> None:
        atomic_write_text(self.ws.voices_path, lib.to_json() + "\n")

    @contextlib.contextmanager
    def editing_voices(self) -> Iterator[Library]:
        """The library, loaded and saved again under the workspace's `voices` lock (two
        renames at once must not lose an enrollment)."""
        with self.ws.lock("voices"):
            lib = self.voices()
            yield lib
            self.save_voices(lib)

    def enroll(self, t: Transcript, label: str, enroll: bool) -> None:
        """Make the library agree with `label` of `t`: its voice enrolled under its name, or
        not in the library at all."""
        with self.editing_voices() as lib:
            if enroll:
                lib.enroll(t.speakers[label], t.id, label, t.voiceprints[label])
            else:
                lib.unenroll(t.id, label)

    def forget_voices(self, recording_ids: Iterable[str]) -> int:
        """Drop every enrollment made from these recordings; returns how many were dropped."""
        doomed = set(recording_ids)
        if not self.ws.voices_path.exists():
            return 0
        with self.editing_voices() as lib:
            before = lib.enrollment_count()
            lib.drop_recordings(doomed)
            return before - lib.enrollment_count()

    def sync_voices(self, t: Transcript) -> None:
        """Make the library hold exactly `t`'s enrollable voices for this recording (after
        `undo` brought back an older version: a rename undone must not keep naming people)."""
        from confindex.speech.voices import enrollments_of

        wanted = enrollments_of(t)
        if not wanted and not self.ws.voices_path.exists():
            return
        with self.editing_voices() as lib:
            lib.drop_recordings({t.id})
            for name, label, vp in wanted:
                lib.enroll(name, t.id, label, vp)

    def recognise(self, t: Transcript) -> dict[str, str]:
        """Name the speakers of `t` the voice library knows, in place; label -> name for the
        names given. An unreadable library costs the names, not the transcription."""
        from confindex.speech import voices

        if not t.voiceprints or not self.ws.voices_path.exists():
            return {}
        try:
            library = self.voices()
        except ConfindexError as exc:
            log.warning("voices not recognised in %s: %s", t.id, exc.message)
            return {}
        given = {}
        for c in voices.identify(t, library):
            if c.new:
                given[c.label] = c.new
                log.info("%s: %s recognised as %s (%.2f)", t.id, c.label, c.new, c.score or 0.0)
        return given
