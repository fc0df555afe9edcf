"""Defaults from config files: `confindex.toml` in the workspace, then the user's config file.

    # confindex.toml (workspace) or ~/.config/confindex/config.toml (user; see `user_config_path`)
    [fetch]                 # any option of a command, by its long name with _ for -
    language = "fr"
    model = "/models/whisper-large-v3"
    formats = "srt,vtt"     # which exports fetch writes (all | none | a list)
    [search]
    limit = 20
    [subtitles]             # subtitle cues, for fetch and export
    max_line_width = 37
    max_line_count = 2
    min_duration = 1.0

Precedence: the command line, then environment variables (`CONFINDEX_<COMMAND>_<OPTION>`,
e.g. `CONFINDEX_FETCH_LANGUAGE=fr`), then the workspace file, then the user file, then the
built-in default. A malformed file is a one-line error naming it.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from confindex.errors import InputError
from confindex.store.workspace import Workspace

WORKSPACE_FILE = "confindex.toml"
ENV_CONFIG = "CONFINDEX_CONFIG"  # a user config file elsewhere (or "" for none)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def user_config_path() -> Path | None:
    """$CONFINDEX_CONFIG, else platformdirs' user config dir (~/.config/confindex/config.toml)."""
    env = os.environ.get(ENV_CONFIG)
    if env is not None:
        return Path(env).expanduser() if env else None
    from platformdirs import user_config_dir

    return Path(user_config_dir("confindex", appauthor=False)) / "config.toml"


@lru_cache(maxsize=16)
def _read(path: Path, mtime_ns: int) -> dict[str, Any]:
    from confindex.safeio import MAX_CONFIG_BYTES, UnreadableFile, read_regular

    try:
        # A regular file of at most 1 MiB: a FIFO named confindex.toml hung every command, a
        # symlink to /dev/zero was read until memory ran out.
        raw = read_regular(path, MAX_CONFIG_BYTES, "config file")
        data = tomllib.loads(raw.decode("utf-8"))
    except UnreadableFile as exc:
        raise InputError(str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"config file {path} is not valid TOML: not UTF-8 text") from None
    except RecursionError:
        raise InputError(f"config file {path} is not valid TOML: it nests too deep") from None
    except OSError as exc:
        raise InputError(f"cannot read config file {path}: {exc.strerror}") from None
    for key, value in data.items():
        if not isinstance(value, dict):
            raise InputError(
                f"config file {path}: {key!r} must be a table like [fetch] or [subtitles]"
            )
        for name, v in value.items():
            # Options are scalars or lists of scalars: a nested table ([fetch.x]) or array
            # reached click as a default and ended in a traceback.
            items = v if isinstance(v, list) else [v]
            if any(isinstance(x, (dict, list)) for x in items):
                raise InputError(
                    f"config file {path}: [{key}] {name} must be a value or a list of values"
                )
    return data


def _load_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        st = path.stat()
    except OSError:
        return {}
    return _read(path, st.st_mtime_ns)


def load(ws: Workspace | None) -> dict[str, dict[str, Any]]:
    """The merged configuration: workspace values over user values, table by table."""
    merged: dict[str, dict[str, Any]] = {}
    files = [user_config_path()]
    if ws is not None:
        files.append(ws.root / WORKSPACE_FILE)
    for path in files:
        for table, values in _load_file(path).items():
            merged.setdefault(table, {}).update(values)
    return merged


def default_map(ws: Workspace | None) -> dict[str, dict[str, Any]]:
    """click's default_map: per-command option defaults (`[subtitles]` also feeds `export`)."""
    conf = load(ws)
    out = {k.replace("-", "_"): v for k, v in conf.items() if k != "subtitles"}
    out = {k: {o.replace("-", "_"): v for o, v in opts.items()} for k, opts in out.items()}
    if "formats" in out.get("fetch", {}) and isinstance(out["fetch"]["formats"], list):
        out["fetch"]["formats"] = ",".join(out["fetch"]["formats"])
    return {k.replace("_", "-") if k == "retry_failed" else k: v for k, v in out.items()}


def section(ws: Workspace | None, table: str) -> dict[str, Any]:
    """One table of the merged configuration (a copy; empty when absent)."""
    return dict(load(ws).get(table, {}))


def export_defaults(ws: Workspace | None) -> tuple[str | list[str] | None, str | None]:
    """(formats, output_dir) that `fetch` writes by default, from the [fetch] table (the
    formats as written there: formats.export.parse_formats reads them)."""
    fetch = load(ws).get("fetch", {})
    return fetch.get("formats"), fetch.get("output_dir")
