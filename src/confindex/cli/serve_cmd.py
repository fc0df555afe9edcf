"""`confindex serve`: the browser workbench over a workspace."""

from __future__ import annotations

from typing import Any

import click

from confindex.cli.common import workspace_option


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0 picks a free one).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a web browser.")
@workspace_option
def serve(host: str, port: int, open_browser: bool, ws: Any) -> None:
    """Search, listen, read, name speakers and cite in the browser.

    Serves the workspace on http://127.0.0.1:8765 (only this machine can reach it); Ctrl-C
    stops it.

    \b
    Examples:
      confindex serve
      confindex serve --workspace demo --port 9000 --open
    """
    from confindex.errors import InputError

    if not ws.root.is_dir():  # checked before the server starts: it would serve nothing
        raise InputError(f"no workspace at {ws.root}: give an existing folder with --workspace")
    try:
        from confindex.web.server import serve as run_server
    except ImportError as exc:  # a partial install: name what is missing
        from confindex.errors import ConfindexError

        raise ConfindexError(f"confindex serve needs {exc.name}: pip install confindex") from None

    def echo(msg: str) -> None:
        click.echo(msg)

    def warn(msg: str) -> None:
        from confindex.sanitize import terminal

        click.echo(terminal(msg), err=True)

    run_server(ws, host, port, open_browser=open_browser, echo=echo, warn=warn)
    click.echo("stopped", err=True)
