"""A minimum download rate (issue 30, H6), as curl's --speed-limit/--speed-time: a download that
received fewer than MIN_RATE x MIN_RATE_WINDOW bytes in the last MIN_RATE_WINDOW seconds is
given up, whatever yt-dlp's block size, and nothing goes on reading after that.

A server sending 1 byte every 4 s never trips the socket timeout, and checking the rate from
yt-dlp's progress hook was not enough: the hook fires after each read block, and yt-dlp reads
a block until it is full (1 KiB at first, resized towards ~1 s of data, up to 4 MiB), so a
trickle was noticed after ~1 h, and after a fast start (4 MiB blocks) after weeks. Here every
response yt-dlp opens while downloading is read in pieces of at most `piece` bytes, each counted
as it comes, and a watchdog thread looks at the count every tick; when the rate is too low it
shuts the response's socket down, which wakes the blocked read, and the reading thread (yt-dlp's
own, the caller's) raises the error and closes the response before it writes anything more.
yt-dlp's own block size, progress hooks and file writes are left as they are.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from confindex.errors import DownloadError
from confindex.run.credentials import short
from confindex.safeio import env_float

MIN_RATE_ENV = "CONFINDEX_MIN_RATE"  # bytes per second (0: no minimum)
MIN_RATE_WINDOW_ENV = "CONFINDEX_MIN_RATE_WINDOW"  # seconds
MIN_RATE = 1024
MIN_RATE_WINDOW = 60.0

# Bytes not yet counted are at most one piece, so a download is never given up while it runs
# at more than (1 + 1/PIECES_PER_WINDOW) x the minimum rate. Pieces of 7.5 KiB (the default
# 1024 B/s x 60 s / 8) cost 0.2 CPU s per 256 MiB on loopback (0.66 -> 0.86 s); holding
# yt-dlp itself to 7.5 KiB blocks so that its progress hook counts instead cost 7.7 s (its
# per-block work: hook, speed, file write) - bench/min_rate.py.
PIECES_PER_WINDOW = 8
MIN_PIECE, MAX_PIECE = 1024, 1 << 20


def socket_of(resp: Any) -> socket.socket | None:
    """The socket under a yt-dlp response (urllib: adapter → addinfourl → HTTPResponse →
    BufferedReader → SocketIO → socket), or None (a decoded body in memory, another handler)."""
    obj = resp
    for _ in range(8):
        if isinstance(obj, socket.socket):
            return obj
        obj = next(
            (v for a in ("fp", "raw", "_sock") if (v := getattr(obj, a, None)) is not None), None
        )
        if obj is None:
            return None
    return None


class RateWatch:
    """Watches the downloads one YoutubeDL makes (`with watch.attached(ydl): ...`)."""

    def __init__(self, url: str, limit_rate: float | None = None) -> None:
        self.url = url
        self.rate = env_float(MIN_RATE_ENV, MIN_RATE)
        if limit_rate:  # `--limit-rate` below the minimum: the user's own throttle is no stall
            self.rate = min(self.rate, limit_rate / 2)
        self.window = env_float(MIN_RATE_WINDOW_ENV, MIN_RATE_WINDOW)
        piece = self.rate * self.window / PIECES_PER_WINDOW
        self.piece = int(min(max(piece, MIN_PIECE), MAX_PIECE))
        self.tick = min(1.0, max(self.window / 8, 0.05))
        self.error: DownloadError | None = None
        self.clock: Callable[[], float] = time.monotonic
        self._total = 0  # bytes counted; written by the reading thread only
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None  # of the response being read
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._depth = 0

    @property
    def active(self) -> bool:
        return self.rate > 0 and self.window > 0

    @contextlib.contextmanager
    def attached(self, ydl: Any) -> Iterator[None]:
        """Counts every response opened while `ydl.dl` runs (the media download: HttpFD and
        the fragment downloaders open theirs through `ydl.urlopen`, one at a time) and watches
        the rate from the first of them to the end of `ydl.dl`. Not timed: extraction (web
        pages, API calls, JS challenges) and `--sleep-interval`'s sleep (inside `ydl.dl`,
        before the download opens anything); a server that does not answer at all is the
        socket timeout's."""
        if not self.active:
            yield
            return
        dl, urlopen = ydl.dl, ydl.urlopen

        def watched_dl(*args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            try:
                return dl(*args, **kwargs)
            finally:
                self._depth -= 1
                if not self._depth:
                    self._disarm()

        def watched_urlopen(req: Any) -> Any:
            self._raise_if_given_up(None)
            resp = urlopen(req)
            if self._depth:
                self._watch(resp)
                self._arm()
            return resp

        ydl.dl, ydl.urlopen = watched_dl, watched_urlopen
        try:
            yield
        finally:
            self._disarm()
            ydl.dl, ydl.urlopen = dl, urlopen

    # --- the reading thread ---------------------------------------------------------------

    def _watch(self, resp: Any) -> None:
        read = resp.read
        piece = self.piece

        def counted_read(amt: int | None = None) -> bytes:
            parts: list[bytes] = []
            left = -1 if amt is None or amt < 0 else amt
            while left != 0:
                try:
                    data = read(piece if left < 0 else min(left, piece))
                except OSError:
                    # Our shutdown can surface as ECONNRESET rather than an empty read (data
                    # still unread in the buffer): say why, or yt-dlp retries a reset
                    # connection aloud (seen with 3 busy test workers) before giving up.
                    self._raise_if_given_up(resp)
                    raise
                self._total += len(data)
                self._raise_if_given_up(resp)
                if not data:
                    break
                parts.append(data)
                left = left - len(data) if left > 0 else left
            return b"".join(parts)

        sock, dup = socket_of(resp), None
        with contextlib.suppress(OSError):
            # A duplicate of the descriptor, ours to shut down until we close it: the
            # original may be closed (and its number reused) by the reader at any moment.
            dup = socket.fromfd(sock.fileno(), sock.family, sock.type) if sock else None
        self._set_sock(dup)
        resp.read = counted_read

    def _set_sock(self, sock: socket.socket | None) -> None:
        with self._lock:
            old, self._sock = self._sock, sock
        if old is not None:
            old.close()

    def _raise_if_given_up(self, resp: Any) -> None:
        if self.error is None:
            return
        if resp is not None:  # the socket goes now, not when the traceback is collected
            with contextlib.suppress(Exception):
                resp.close()
        raise self.error

    # --- the watchdog thread --------------------------------------------------------------

    def _arm(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="confindex-min-rate", daemon=True)
        self._thread.start()

    def _disarm(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self._set_sock(None)

    def _run(self) -> None:
        start = self.clock()
        # (time, bytes counted) every tick; the count at the start of the window is the last
        # sample at or before it, so a give-up comes at most one tick late, never early.
        samples: collections.deque[tuple[float, int]] = collections.deque([(start, self._total)])
        while not self._stop.wait(self.tick):
            now, total = self.clock(), self._total
            samples.append((now, total))
            if now - start < self.window:
                continue
            while len(samples) > 1 and samples[1][0] <= now - self.window:
                samples.popleft()
            got = total - samples[0][1]
            if got < self.rate * self.window:
                self._give_up(got)
                return

    def _give_up(self, got: int) -> None:
        self.error = DownloadError(
            f"cannot download {short(self.url)}: slower than {self.rate:.0f} bytes/s for "
            f"{self.window:g} s ({got} bytes); gave up",
            transient=True,
        )
        with self._lock, contextlib.suppress(OSError):
            if self._sock is not None:
                # Shutting the connection down wakes the read blocked on it (recv returns,
                # the reading thread raises and closes the response) and tells the server.
                self._sock.shutdown(socket.SHUT_RDWR)
