"""run/stall.py's reading side, without a server: what the reading thread raises when the
watchdog gives up while a read is blocked (the loopback cases are in
tests/adversarial/test_hostile_waits.py)."""

from __future__ import annotations

import pytest

from confindex.errors import DownloadError
from confindex.run.stall import RateWatch


class _Resp:
    """A response whose blocked read ends in a reset: what shutting the socket down with data
    still unread can look like to the reader."""

    def __init__(self, watch: RateWatch | None) -> None:
        self.watch, self.closed = watch, False

    def read(self, amt: int | None = None) -> bytes:
        if self.watch is not None:
            self.watch._give_up(0)  # the watchdog, while this read waits
        raise ConnectionResetError(104, "Connection reset by peer")

    def close(self) -> None:
        self.closed = True


def test_a_reset_after_giving_up_is_the_give_up_and_closes_the_response() -> None:
    watch = RateWatch("http://127.0.0.1:1/talk.mp3")
    resp = _Resp(watch)
    watch._watch(resp)
    # Not a ConnectionResetError: yt-dlp would announce a retry of a download we gave up.
    with pytest.raises(DownloadError, match=r"slower than 1024 bytes/s for 60 s \(0 bytes\)"):
        resp.read(4096)
    assert resp.closed


def test_a_reset_before_any_give_up_stays_a_network_error() -> None:
    watch = RateWatch("http://127.0.0.1:1/talk.mp3")
    resp = _Resp(None)
    watch._watch(resp)
    with pytest.raises(ConnectionResetError):  # yt-dlp's to retry, as before
        resp.read(4096)
    assert not resp.closed
