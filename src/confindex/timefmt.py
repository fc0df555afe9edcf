"""Times as people write them: `[hh:mm:ss]` stamps, SRT/VTT clocks, and parsing `12:34`, `10m`."""

from __future__ import annotations

import re

from confindex.errors import InputError


def hms(seconds: float) -> str:
    """`754.2` → `00:12:34` (floored to the second, as a player's clock shows it)."""
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def clock(seconds: float, sep: str = ",") -> str:
    """SRT (`00:12:34,200`) or, with sep=".", VTT clock with milliseconds."""
    ms = max(0, round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


# `1h2m3s`, and the French way of writing times: the last unit may be left out and is then
# the next smaller one (`1m30` is 90 s, `1h30` is 5400 s, `1 h 05` is 3900 s).
_UNIT = re.compile(r"(\d+(?:\.\d+)?)([hms]?)")
_SECONDS = {"h": 3600, "m": 60, "s": 1}
_NEXT = {"h": "m", "m": "s"}


def parse_time(text: str) -> float:
    """Seconds from `754`, `12:34`, `1:02:03`, `12m`, `1h2m3s`, `90s`, `12:34.5`, `1m30`, `1h30`."""
    t = text.strip().lower()
    if not t:
        raise InputError("empty time")
    try:
        if ":" in t:
            parts = [float(p) for p in t.split(":")]
            # 9:99 is a typo, not 10:39: minutes and seconds after the first field stay < 60.
            if len(parts) > 3 or any(p < 0 for p in parts) or any(p >= 60 for p in parts[1:]):
                raise ValueError
            total = 0.0
            for p in parts:
                total = total * 60 + p
            return total
        if t.replace(".", "", 1).isdigit():
            return float(t)
        t = re.sub(r"\s+", "", t)
        pos, total, last = 0, 0.0, ""
        for m in _UNIT.finditer(t):
            value, unit = m.group(1), m.group(2)
            if m.start() != pos:
                raise ValueError
            if not unit:
                # A bare number only ends a time, after h or m, as whole minutes or seconds.
                if last not in _NEXT or m.end() != len(t) or "." in value:
                    raise ValueError
                unit = _NEXT[last]
            # Units come largest first, once each; after the first, a field stays < 60
            # (1m75 is a typo, as 9:99 is).
            if last and (_SECONDS[unit] >= _SECONDS[last] or float(value) >= 60):
                raise ValueError
            total += float(value) * _SECONDS[unit]
            pos, last = m.end(), unit
        if pos != len(t) or not last:
            raise ValueError
        return total
    except ValueError:
        raise InputError(
            f"cannot read {text!r} as a time (try 754, 12:34, 1:02:03, 12m30s or 12m30)"
        ) from None


def parse_span(text: str, duration: float | None = None) -> tuple[float, float]:
    """`12:30-14:00`, `750-840`, `12m30s..14m` → (start, end) seconds, checked."""
    m = re.fullmatch(r"\s*(.+?)\s*(?:\.\.|(?<![:\s])-(?=[\d\s]))\s*(.+?)\s*", text or "")
    if not m:
        raise InputError(f"--span {text!r}: give START-END, e.g. 12:30-14:00")
    a, b = parse_time(m.group(1)), parse_time(m.group(2))
    if b <= a:
        raise InputError(f"--span {text!r}: the end must come after the start")
    if duration is not None and a >= duration:
        raise InputError(f"--span {text!r} starts after the recording's end ({duration:.1f} s)")
    if duration is not None:
        b = min(b, duration)
    return a, b
