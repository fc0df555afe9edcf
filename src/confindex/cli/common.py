"""Options and output helpers shared by the commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from confindex.store.workspace import Workspace

F = TypeVar("F", bound=Callable[..., Any])


def workspace_option(f: F) -> F:
    """`--workspace DIR` (else $CONFINDEX_HOME, else the current directory) → `ws: Workspace`."""

    def to_ws(ctx: click.Context, param: click.Parameter, value: str | None) -> Workspace:
        # `confindex -w DIR cmd` and `confindex cmd -w DIR` both work; the later one wins.
        ws = Workspace.resolve(value or global_options(ctx).get("workspace"))
        if ws.root.exists() and not ws.root.is_dir():
            # Else reading commands answered "No recordings in FILE", as if it were empty.
            raise click.BadParameter(f"{ws.root} is not a folder", ctx=ctx, param=param)
        return ws

    return click.option(
        "--workspace",
        "-w",
        "ws",
        metavar="DIR",
        callback=to_ws,
        expose_value=True,
        help="Workspace folder holding transcripts/ and index/ "
        "(default: $CONFINDEX_HOME or the current directory).",
    )(f)


def global_options(ctx: click.Context | None) -> dict[str, Any]:
    """What was given before the command (`confindex -w DIR --json cmd`), else {}."""
    root = ctx.find_root() if ctx is not None else None
    return root.meta.get("confindex.globals", {}) if root is not None else {}


def json_option(f: F) -> F:
    def flag(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        return bool(value or global_options(ctx).get("json"))

    return click.option(
        "--json", "as_json", is_flag=True, callback=flag, help="Print JSON for scripts."
    )(f)


def print_json(data: Any) -> None:
    from confindex.sanitize import json_text

    # json escapes C0 (ESC is \u001b) but not C1 controls or bidi overrides: json_text does.
    sys.stdout.write(json_text(json.dumps(data, ensure_ascii=False, indent=2, default=str)))
    sys.stdout.write("\n")


def stderr_console():
    """A rich console on stderr for progress and status, so stdout stays clean for --json."""
    from confindex.cli.output import stderr_console as make

    return make()
