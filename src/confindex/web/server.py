"""Run the app with uvicorn on a socket we bind ourselves (so `--port 0` can say its port)."""

from __future__ import annotations

import errno
import logging
import socket
import threading
from collections.abc import Callable

from confindex.errors import ConfindexError
from confindex.store.workspace import Workspace
from confindex.web.security import is_loopback

log = logging.getLogger("confindex")


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it every response waited ~40 ms (Nagle + delayed ACK: headers and body are two
    # writes) — measured 42 ms for a static file, 1 ms with it.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfindexError(
                f"port {port} on {host} is in use: pass --port N (0 picks a free one)"
            ) from None
        raise ConfindexError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    shown = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
    return f"http://{shown}:{port}/"


def exposure_warning(host: str) -> str | None:
    """What to tell a user who serves beyond this machine (None for a loopback address)."""
    if is_loopback(host.strip("[]")):
        return None
    return (
        f"Warning: serving on {host}: anyone who can reach this machine can read this "
        "archive and rename its speakers; the default, 127.0.0.1, is reachable only here"
    )


def serve(
    ws: Workspace,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    open_browser: bool = False,
    echo: Callable[[str], None] = print,
    warn: Callable[[str], None] = print,
) -> None:
    """Serve the workspace until Ctrl-C (uvicorn shuts down cleanly on SIGINT/SIGTERM)."""
    import uvicorn

    from confindex.search.hits import searcher
    from confindex.search.index import warn_if_stale
    from confindex.web.app import create_app

    message = exposure_warning(host)
    if message:
        warn(message)
    sock = bind(host, port)
    url = url_of(sock, host)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:  # the URL is printed once it answers
                echo(f"confindex serve: {url} (workspace {ws.root}); Ctrl-C stops it")
                if open_browser:
                    import webbrowser

                    threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()

    try:
        # Open the index now (the first search should not pay for it); serving never builds
        # nor changes it: a missing or stale one is a warning naming `index --rebuild`.
        warn_if_stale(ws, warn)
        searcher(ws)
        app = create_app(ws, bind_host=host.strip("[]"))
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", server_header=False
        )
        # uvicorn shuts down gracefully on Ctrl-C, then raises the signal again for us; a
        # Ctrl-C during start-up is a clean stop too (nothing was written).
        Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
