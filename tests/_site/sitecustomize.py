"""Loaded by every Python subprocess a test starts (conftest puts this folder on PYTHONPATH).

An uncaught exception, a crashed thread or a failing `__del__` prints a traceback for a user; here
each is also written to `$PYTEST_TRACEBACK_DIR`, and conftest fails the test that started the
process. So the no-traceback check covers every CLI subprocess, whoever starts it and whatever
it does with stderr.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import threading
import traceback

_DIR = os.environ.get("PYTEST_TRACEBACK_DIR")


def _record(kind: str, exc_type, exc, tb) -> None:
    try:
        name = f"{os.getpid()}-{threading.get_ident()}-{kind}.txt"
        with open(os.path.join(_DIR or ".", name), "a", encoding="utf-8") as f:
            f.write(f"{sys.argv!r} ({kind}):\n")
            f.write("".join(traceback.format_exception(exc_type, exc, tb)))
    except Exception:  # a hook must never fail (even at interpreter shutdown)
        pass


if _DIR and not getattr(sys, "_test_traceback_hooks", False):
    sys._test_traceback_hooks = True  # type: ignore[attr-defined]  # once, even if chained
    _excepthook = sys.excepthook
    _threadhook = threading.excepthook
    _unraisablehook = sys.unraisablehook

    def _on_uncaught(exc_type, exc, tb) -> None:
        _record("uncaught", exc_type, exc, tb)
        _excepthook(exc_type, exc, tb)

    def _on_thread(args) -> None:
        if args.exc_type is not SystemExit:  # what threading itself stays silent about
            _record("thread", args.exc_type, args.exc_value, args.exc_traceback)
        _threadhook(args)

    def _on_unraisable(u) -> None:
        _record("unraisable", u.exc_type, u.exc_value, u.exc_traceback)
        _unraisablehook(u)

    sys.excepthook = _on_uncaught
    threading.excepthook = _on_thread
    sys.unraisablehook = _on_unraisable

# Shadowing must not disable the interpreter's own sitecustomize (Debian has one): run it too.
_here = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.machinery.PathFinder.find_spec(
    "sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != _here]
)
if _spec is not None and _spec.loader is not None:
    _spec.loader.exec_module(importlib.util.module_from_spec(_spec))
