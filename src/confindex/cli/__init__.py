"""The `confindex` command: a thin click layer over the library.

Each command lives beside its stage (`cli/<stage>_cmd.py`) and is imported only when used, so
`confindex search` never pays for importing faster-whisper or yt-dlp.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import logging
import os
import sys

import click

from confindex import __version__
from confindex.errors import ConfindexError

# command name -> "module:attribute" under confindex.cli
COMMANDS: dict[str, str] = {
    "fetch": "fetch_cmd:fetch",
    "transcribe": "fetch_cmd:transcribe",
    "search": "search_cmd:search",
    "show": "search_cmd:show",
    "cite": "search_cmd:cite",
    "export": "search_cmd:export",
    "related": "related_cmd:related",
    "chapters": "chapters_cmd:chapters",
    "review": "review_cmd:review",
    "index": "index_cmd:index",
    "stats": "index_cmd:stats",
    "speakers": "speakers_cmd:speakers",
    "eval": "eval_cmd:eval_group",
    "status": "bulk_cmd:status",
    "resume": "bulk_cmd:resume",
    "retry-failed": "bulk_cmd:retry_failed",
    "list": "catalog_cmd:list_recordings",
    "rm": "catalog_cmd:rm",
    "serve": "serve_cmd:serve",
    "edit": "edit_cmd:edit",
    "history": "edit_cmd:history",
    "undo": "edit_cmd:undo",
    "meta": "edit_cmd:meta",
}


class LazyGroup(click.Group):
    """Imports a command's module on first use; turns expected errors into one-line messages."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._load(name) is not None]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._load(name)

    def _load(self, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{module_name}":
                return None  # command not built in this version
            raise
        cmd = getattr(module, attr, None)
        return _with_color_option(cmd) if cmd is not None else None

    def main(self, *args, standalone_mode: bool = True, **kwargs):  # type: ignore[override]
        """Like click's, but usage errors too are one line: `Error: …` and exit code 2."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            # Without standalone mode click returns (not raises) the code of ctx.exit()/Exit.
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            hint = ""
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                hint = f" (see: {exc.ctx.command_path} --help)"
            fail(" ".join(exc.format_message().split()) + hint, exc.exit_code)
        except click.Abort:
            fail("interrupted; finished work is kept, rerun the same command to resume", 130)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        _log_to_stderr()
        try:
            _apply_config(ctx)
            return super().invoke(ctx)
        except ConfindexError as exc:
            fail(exc.message, exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted; finished work is kept, rerun the same command to resume", 130)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                fail("disk full: free some space and rerun; finished work is kept", 1)
            if exc.errno == errno.EPIPE:
                sys.exit(0)
            # Read-only folders, permissions, I/O errors: one line naming the file, not a
            # traceback (finished work is written atomically, so nothing is half-written).
            where = f": {exc.filename}" if exc.filename else ""
            fail(f"{exc.strerror or exc}{where}", 1)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            # Anything else is a bug: the traceback goes to the log (stderr with -v, the
            # --log-file), the run stops, and the user gets one line saying so.
            logging.getLogger("confindex").error(
                "unexpected error (a bug)", exc_info=exc, extra={"console": False}
            )
            fail(
                f"unexpected error (a bug, please report it): {type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:200]} (rerun with -v for the traceback)",
                70,
            )


def _set_color(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    from confindex.cli.output import set_color

    if value is not None:  # else the global --color (or $CONFINDEX_COLOR) stands
        set_color(value)


def _with_color_option(cmd: click.Command) -> click.Command:
    """`--color` after the command too (`confindex search x --color never`, as `ls` and `grep`
    take it), on every command and subcommand; the global one before the command still works."""
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            _with_color_option(sub)
    if not any(p.name == "color" for p in cmd.params):
        cmd.params.append(
            click.Option(
                ["--color"],
                type=click.Choice(["auto", "always", "never"]),
                default=None,
                expose_value=False,
                is_eager=True,
                callback=_set_color,
                help="Colour on the terminal: auto (default; NO_COLOR=1 turns it off), always, "
                "never.",
            )
        )
    return cmd


def _log_to_stderr() -> None:
    """confindex's warnings (retries, truncated media, a ledger set aside) on stderr, one
    sanitised line each, until the group's options (-v, --log-file) refine it."""
    from confindex.log import has_console, setup

    if not has_console():
        setup()


def _workspace_in(args: list[str]) -> str | None:
    """The value of a `-w/--workspace` given after the command (the last one wins)."""
    found = None
    for i, a in enumerate(args):
        if a in ("-w", "--workspace") and i + 1 < len(args):
            found = args[i + 1]
        elif a.startswith("--workspace="):
            found = a.split("=", 1)[1]
        elif a.startswith("-w") and len(a) > 2 and not a.startswith("--"):
            found = a[2:]
    return found


def _apply_config(ctx: click.Context) -> None:
    """Option defaults from confindex.toml (workspace) and the user config file, as click's
    default_map: read before the command parses its options, so they act as defaults."""
    from confindex.config import default_map
    from confindex.store.workspace import Workspace

    rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
    if not rest or rest[0] in ("-h", "--help"):
        return
    chosen = _workspace_in(rest[1:]) or ctx.params.get("workspace")
    conf = default_map(Workspace.resolve(chosen))
    if conf:
        cmd = (
            ctx.command.get_command(ctx, rest[0]) if isinstance(ctx.command, click.Group) else None
        )
        if cmd is not None and isinstance(conf.get(rest[0]), dict):
            conf[rest[0]] = _lists_joined(conf[rest[0]], cmd)
        ctx.default_map = {**conf, **(ctx.default_map or {})}


def _lists_joined(values: dict, cmd: click.Command) -> dict:
    """A TOML list (`languages = ["fr", "en"]`) for an option that takes one comma-separated
    value (`--languages fr,en`) becomes that value; options given many times keep the list."""
    many = {p.name for p in cmd.params if getattr(p, "multiple", False) or p.nargs != 1}
    return {
        k: ",".join(map(str, v)) if isinstance(v, list) and k not in many else v
        for k, v in values.items()
    }


def fail(message: str, code: int = 1) -> None:
    from confindex.sanitize import terminal

    # Messages quote file names, URLs and titles: one line, no escape sequence reaches the tty.
    click.echo(f"Error: {terminal(message)}", err=True)
    sys.exit(code)


@click.group(
    cls=LazyGroup,
    # Every option can also come from the environment: CONFINDEX_<COMMAND>_<OPTION>.
    context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "CONFINDEX"},
)
@click.version_option(__version__, prog_name="confindex")
@click.option(
    "-w",
    "--workspace",
    metavar="DIR",
    envvar="CONFINDEX_HOME",
    help="Workspace folder (default: $CONFINDEX_HOME or the current directory).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON output for every command that has it.")
@click.option(
    "-v", "--verbose", count=True, help="Log details and tracebacks on stderr (-vv: debug)."
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    metavar="FILE",
    help="Append a detailed log (debug level, tracebacks, yt-dlp's messages) to FILE.",
)
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default=None,
    help="Colour on the terminal (default auto; NO_COLOR=1 turns it off).",
)
@click.pass_context
def cli(
    ctx: click.Context,
    workspace: str | None,
    as_json: bool,
    verbose: int,
    log_file: str | None,
    color: str | None,
):
    """Turn recorded conferences, lectures and panels into a searchable, citable archive.

    Global options go before the command: `confindex -w demo search "cold war"`.

    \b
    Quick start:
      confindex fetch ./panel.mp4 https://www.youtube.com/watch?v=ID
      confindex search "diplomatie spatiale"
    """
    from confindex.cli.output import set_color
    from confindex.log import setup

    ctx.meta["confindex.globals"] = {"workspace": workspace, "json": as_json}
    set_color(color)
    setup(verbose, log_file)


def main() -> None:
    try:
        cli(prog_name="confindex")
    except SystemExit as exc:
        _exit(exc)


def _exit(exc: SystemExit) -> None:
    """Leave with `exc`'s code. A bulk run's download thread may still be inside native code
    when the run ends early (Ctrl-C, a model error): diarizing or decoding the next recording
    ahead (executors.PipelinedExecutor). Interpreter teardown under it aborted the process
    ("terminate called without an active exception", exit -6 instead of 130: 3 of 9 tries of
    test_bulk's Ctrl-C test). Then what was written is flushed and the process leaves without
    teardown; the ledger and every file were already left consistent (each write is atomic)."""
    import threading

    executors = sys.modules.get("confindex.run.executors")  # imported only by runs that use it
    prefix = executors.DOWNLOADER if executors is not None else None
    if prefix is None or not any(t.name.startswith(prefix) for t in threading.enumerate()):
        raise exc
    code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"), as Python itself would show it
        print(code, file=sys.stderr)
        code = 1
    logging.shutdown()  # --log-file
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
