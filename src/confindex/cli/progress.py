"""Progress on stderr: rich bars on a terminal, one plain line per stage otherwise."""

from __future__ import annotations

import time
from typing import Any

from confindex.run.pipeline import Reporter
from confindex.sanitize import rich
from confindex.timefmt import hms


class ConsoleReporter(Reporter):
    """Draws download (bytes) and transcription (audio time, × realtime) progress."""

    def __init__(self, console: Any, *, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.live = console.is_terminal and not quiet
        self._progress = None
        self._task = None
        self._stage = ""
        self._t0 = time.perf_counter()

    def __enter__(self) -> ConsoleReporter:
        if self.live:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}", style="bold"),
                BarColumn(bar_width=24),
                TextColumn("{task.fields[detail]}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress:
            self._progress.stop()

    def stage(self, recording_id: str, stage: str, total: float | None = None) -> None:
        self._stage = stage
        self._t0 = time.perf_counter()
        label = f"{stage:<10} {rich(short(recording_id))}"  # rich reads descriptions as markup
        if self._progress is not None:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._task = self._progress.add_task(label, total=total, detail="")
        elif not self.quiet:
            extra = f" ({hms(total)} of audio)" if total and stage == "transcribe" else ""
            self.console.print(f"{label}{extra}", markup=True)

    def advance(self, done: float, total: float | None = None) -> None:
        if self._progress is None or self._task is None:
            return
        elapsed = max(time.perf_counter() - self._t0, 1e-6)
        if self._stage == "download":
            mb = done / 1e6
            detail = f"{mb:.1f}" + (f"/{total / 1e6:.1f} MB" if total else " MB")
            detail += f"  {mb / elapsed:.1f} MB/s"
        else:
            detail = f"{hms(done)}/{hms(total or 0)}  {done / elapsed:.1f}× realtime"
        self._progress.update(self._task, completed=done, total=total, detail=detail)

    def side(self) -> Reporter | None:
        # Only drawn as a bar: plain output keeps one line per stage of the main thread.
        return _SideTask(self._progress) if self._progress is not None else None

    def done(self, recording_id: str, status: str, message: str = "") -> None:
        if self._progress is not None and self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
        if self.quiet or status == "failed":  # failures are reported once, at the end
            return
        style = {"done": "green", "skipped": "yellow", "failed": "red"}.get(status, "")
        line = f"[{style}]{status:<8}[/] {rich(recording_id)}  {rich(message)}"
        self.console.print(line, markup=True)


class _SideTask(Reporter):
    """A download drawn as its own bar while the main thread transcribes (rich's Progress
    takes a lock in every method, so another thread may add and update tasks). Without it a
    default `fetch URL` showed nothing at all while downloading, and a stalled server meant
    30 s of silence before the first retry was announced."""

    def __init__(self, progress: Any) -> None:
        self._progress = progress
        self._task: Any = None
        self._t0 = time.perf_counter()

    def stage(self, recording_id: str, stage: str, total: float | None = None) -> None:
        self.done(recording_id, "")
        self._t0 = time.perf_counter()
        label = f"{stage:<10} {rich(short(recording_id))}"
        self._task = self._progress.add_task(label, total=total, detail="")

    def advance(self, done: float, total: float | None = None) -> None:
        if self._task is None:
            return
        mb = done / 1e6
        detail = f"{mb:.1f}" + (f"/{total / 1e6:.1f} MB" if total else " MB")
        detail += f"  {mb / max(time.perf_counter() - self._t0, 1e-6):.1f} MB/s"
        self._progress.update(self._task, completed=done, total=total, detail=detail)

    def done(self, recording_id: str, status: str, message: str = "") -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None


def short(name: str, width: int = 40) -> str:
    """An id or a source for a progress bar's label: whole when it fits; a path or URL keeps
    its end (the file name, not a cut-off folder), anything else its start, marked with …."""
    if len(name) <= width:
        return name
    if "/" in name or "\\" in name:
        return "…" + name[-(width - 1) :]
    return name[: width - 1] + "…"
