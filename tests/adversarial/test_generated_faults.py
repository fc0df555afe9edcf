"""Generated faults (issue 30): seeded generators, not hand-picked cases, over the four places
hostile input comes from — files in a workspace, the config, the inputs of `fetch` and `cite`,
and requests to `serve`. 1,000+ cases; each asserts what a user relies on:

- one line: at most one `Error: …` line, no traceback, no stderr line over 2,000 characters;
- an exit code of 0, 1 or 2 (never 70, "a bug"), an HTTP status under 500;
- no hang: every case has a deadline (a CLI case runs in a thread joined with a timeout);
- nothing lost: the archive's good recording is untouched and still found by search.

A failure prints its generator's seed and case number: rerun with the same seed to reproduce.
The seed is fixed (CONFINDEX_FAULT_SEED overrides it, to explore other cases).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from harness import GOOD_WORDS, good_archive

from confindex.cli import cli
from confindex.store.transcript import load_path
from confindex.store.workspace import Workspace

SEED = int(os.environ.get("CONFINDEX_FAULT_SEED") or 30)
DEADLINE = 30.0  # seconds for one CLI case (a hang fails at once)
MAX_LINE = 2000


# --- running and checking --------------------------------------------------------------------


def invoke(args: list[str], env: dict[str, str] | None = None) -> Any:
    """The real CLI in-process, in a thread with a deadline."""
    box: dict[str, Any] = {}

    def go() -> None:
        try:
            box["r"] = CliRunner().invoke(cli, args, env=env, catch_exceptions=True)
        except BaseException as exc:  # pytest.fail from the traceback check, say
            box["e"] = exc

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(DEADLINE)
    if t.is_alive():
        pytest.fail(f"hang (> {DEADLINE:.0f} s): confindex {' '.join(map(repr, args))}")
    if "e" in box:
        raise box["e"]
    return box["r"]


def problems(r: Any) -> list[str]:
    """What is wrong with a CLI result, by the contract above."""
    out = []
    if r.exit_code not in (0, 1, 2):
        out.append(f"exit {r.exit_code}")
    err_lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    if sum(1 for ln in err_lines if ln.startswith("Error:")) > 1:
        out.append("more than one Error line")
    if r.exit_code != 0 and not any(ln.startswith("Error:") for ln in err_lines):
        out.append("failed without an Error line")
    if any(len(ln) > MAX_LINE for ln in err_lines):  # stdout may be a 5,000-character title
        out.append("a line over 2,000 characters on stderr")
    if "Traceback (most recent call last)" in r.stderr + r.stdout:
        out.append("traceback")
    return out


def intact(ws: Workspace, good_bytes: bytes) -> list[str]:
    from confindex.search.hits import search

    out = []
    if ws.transcript_path("good").read_bytes() != good_bytes:
        out.append("the good transcript changed")
    elif load_path(ws.transcript_path("good")).text.split() != GOOD_WORDS.split():
        out.append("the good transcript lost words")
    hits = search(ws, "brown fox").hits  # copies of it (hostile or not) may be found too
    if "good" not in [h.recording_id for h in hits]:
        out.append(f"search for the good recording: {[h.recording_id for h in hits]}")
    return out


def report(failures: list[str], n: int) -> None:
    print(f"{n} generated cases, {len(failures)} failed")
    assert not failures, f"{len(failures)} of {n} cases failed:\n" + "\n".join(failures[:30])


# --- hostile values ----------------------------------------------------------------------------


def deep(depth: int) -> Any:
    v: Any = "x"
    for _ in range(depth):
        v = [v]
    return v


HOSTILE_VALUES: list[Any] = [
    None, True, 0, -1, 1e308, -1e308, 2**70, "", "\ud800", "a\udfffb", "\u202eevil",
    "line\nbreak\r\x1b[31mred", "\x00nul", "x" * 5000, [], {}, [1, "a", None], {"a": {"b": {}}},
    deep(40), deep(70), "__DEEP__", "../../../etc/passwd", "<script>alert(1)</script>", 3.5,
    float("nan"), float("inf"),
]  # fmt: skip


def _paths(d: Any, at: tuple = ()) -> list[tuple]:
    out = [at]
    if isinstance(d, dict):
        for k, v in d.items():
            out += _paths(v, (*at, k))
    elif isinstance(d, list):
        for i, v in enumerate(d[:3]):
            out += _paths(v, (*at, i))
    return out


def _set(d: Any, path: tuple, value: Any, delete: bool = False) -> Any:
    if not path:
        return value
    parent = d
    for k in path[:-1]:
        parent = parent[k]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return d


def mutate_transcript(rng: random.Random, base: dict[str, Any], root: Path) -> str:
    """Write one hostile transcripts/*.json (or a special file in its place); its id."""
    kind = rng.choice(
        ["value", "value", "value", "delete", "id", "truncate", "flip", "special", "shape"]
    )
    rid = rng.choice(["bad", "bad", "zz-other", "good2"])
    path = root / "transcripts" / f"{rid}.json"
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    elif path.exists() or path.is_symlink():
        path.unlink()
    d = json.loads(json.dumps(base))
    d["recording"]["id"] = rid
    if kind == "value":
        p = rng.choice(_paths(d)[1:])
        d = _set(d, p, rng.choice(HOSTILE_VALUES))
    elif kind == "delete":
        p = rng.choice(_paths(d)[1:])
        d = _set(d, p, None, delete=True)
    elif kind == "id":
        d["recording"]["id"] = rng.choice(["good", "../../../etc/passwd", "", "a" * 300, "ok\n"])
    text = json.dumps(d, ensure_ascii=rng.random() < 0.5, allow_nan=True)
    text = text.replace('"__DEEP__"', "[" * 3000 + '"x"' + "]" * 3000)  # past json's recursion
    if kind == "truncate":
        text = text[: rng.randrange(len(text))]
    data = text.encode("utf-8", "surrogatepass")
    if kind == "flip":
        b = bytearray(data)
        for _ in range(rng.randint(1, 20)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        data = bytes(b)
    if kind == "shape":
        data = rng.choice([b"", b"[]", b'"text"', b"42", b"null", b"\xff\xfe\x00", b"{" * 100000])
    if kind == "special":
        what = rng.choice(["fifo", "zero", "dir", "dangling", "loop"])
        if what == "fifo":
            os.mkfifo(path)
        elif what == "zero":
            path.symlink_to("/dev/zero")
        elif what == "dir":
            path.mkdir()
        elif what == "dangling":
            path.symlink_to(root / "nowhere")
        else:
            path.symlink_to(path)
        return rid
    path.write_bytes(data)
    return rid


# --- 1. workspace files ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = good_archive(tmp_path_factory.mktemp("faults") / "ws")
    return ws.root


def test_generated_workspace_files(template: Path, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    base = json.loads((template / "transcripts" / "good.json").read_text(encoding="utf-8"))
    good_bytes = (template / "transcripts" / "good.json").read_bytes()
    commands: list[Callable[[str], list[str]]] = [
        lambda rid: ["show", rid],
        lambda rid: ["show", "good"],
        lambda rid: ["show", "zzz-nothere"],
        lambda rid: ["list"],
        lambda rid: ["list", "--json"],
        lambda rid: ["index"],
        lambda rid: ["index", "--rebuild"],
        lambda rid: ["search", "brown fox"],
        lambda rid: ["speakers", "--all"],
        lambda rid: ["cite", "good", "--at", "1"],
        lambda rid: ["cite", rid, "--at", "1"],
        lambda rid: ["review", rid],
        lambda rid: ["export", rid, "--format", rng.choice(["srt", "txt", "json"])],
    ]
    failures, n = [], 360
    for i in range(n):
        root = tmp_path / f"c{i}"
        shutil.copytree(template, root, symlinks=True)
        ws = Workspace(root)
        rid = mutate_transcript(rng, base, root)
        args = [*rng.choice(commands)(rid), "--workspace", str(root)]
        r = invoke(args)
        bad = problems(r) + intact(ws, good_bytes)
        if bad:
            failures.append(f"seed {SEED} case {i}: {args[:-2]}: {bad}: {r.stderr[-300:]!a}")
        shutil.rmtree(root, ignore_errors=True)
    report(failures, n)


# --- 2. config -----------------------------------------------------------------------------


def toml_value(rng: random.Random) -> str:
    return rng.choice(
        [
            "1", "-1", "0", "1e400", "inf", "nan", "true", '"fr"', '"x"', '"\\u0000"', "[1, [2]]",
            "{a = 1}", '"' + "x" * 3000 + '"', "[" * 200 + "]" * 200, '"all"', '"srt,nope"',
            "2024-01-01", '"""multi\nline"""', "[]",
        ]
    )  # fmt: skip


def hostile_config(rng: random.Random, path: Path) -> None:
    kind = rng.choice(["tables", "tables", "tables", "bytes", "special", "deep", "big"])
    if kind == "special":
        if rng.random() < 0.5:
            os.mkfifo(path)
        else:
            path.symlink_to("/dev/zero")
        return
    if kind == "bytes":
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randint(1, 400))))
        return
    if kind == "deep":
        path.write_text("[fetch]\nx = " + "[" * 5000 + "]" * 5000 + "\n")
        return
    if kind == "big":
        path.write_text("# " + "x" * (2 << 20) + "\n")
        return
    lines = []
    for _ in range(rng.randint(1, 4)):
        table = rng.choice(["fetch", "search", "subtitles", "export", "serve", "nope", "fetch.x"])
        lines.append(f"[{table}]")
        for _ in range(rng.randint(1, 4)):
            key = rng.choice(
                ["limit", "language", "model", "formats", "max_line_width", "min_duration",
                 "context", "nonsense", "beam_size", "output_dir", "port"]
            )  # fmt: skip
            lines.append(f"{key} = {toml_value(rng)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_generated_config(template: Path, tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    root = tmp_path / "ws"
    shutil.copytree(template, root, symlinks=True)
    ws = Workspace(root)
    good_bytes = ws.transcript_path("good").read_bytes()
    commands = [
        ["search", "brown fox"], ["list"], ["show", "good"], ["export", "good", "--format", "srt"],
        ["cite", "good", "--at", "2"], ["search", "fox", "--json"],
    ]  # fmt: skip
    failures, n = [], 200
    for i in range(n):
        user = rng.random() < 0.3  # $CONFINDEX_CONFIG instead of the workspace file
        path = tmp_path / "user.toml" if user else root / "confindex.toml"
        hostile_config(rng, path)
        args = [*rng.choice(commands), "--workspace", str(root)]
        r = invoke(args, env={"CONFINDEX_CONFIG": str(path) if user else ""})
        bad = problems(r)
        if i % 10 == 0:
            bad += intact(ws, good_bytes)
        if bad:
            failures.append(
                f"seed {SEED + 1} case {i}: {args[:-2]} config: {bad}: {r.stderr[-300:]!a}"
            )
        path.unlink()
    failures += [f"after: {x}" for x in intact(ws, good_bytes)]
    report(failures, n)


# --- 3. inputs -----------------------------------------------------------------------------


def hostile_url(rng: random.Random) -> str:
    scheme = rng.choice(["http", "https", "ftp", "gopher", "javascript", "HTTP", "ws", "sftp"])
    user = rng.choice(["", "", "alice:s3cret@", "a@b@", ":@", "%00@"])
    host = rng.choice(
        ["127.0.0.1:1", "127.0.0.1:99999", "127.0.0.1:-3", "[::1", "exa\u202emple.org",
         "", "a" * 300, "host name", "xn--", "127.0.0.1:1\x00", "\u0430pple.com:1"]
    )  # fmt: skip
    path = rng.choice(["/talk.mp3", "/", "", "/%00", "/" + "a" * rng.randint(1, 12000)])
    return f"{scheme}://{user}{host}{path}"


WAV_HEADER_ONLY = (
    b"RIFF\x24\x7d\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00"
    b"\x80\x3e\x00\x00\x00\x7d\x00\x00\x02\x00\x10\x00data\x00\x7d\x00\x00"
)


def hostile_file(rng: random.Random, d: Path, i: int) -> str:
    kind = rng.choice(["fifo", "zero", "dir", "missing", "empty", "text", "header", "nonutf8"])
    p = d / f"in{i}.wav"
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "zero":
        p.symlink_to("/dev/zero")
    elif kind == "dir":
        p.mkdir()
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "text":
        p.write_text("not audio\n" * rng.randint(1, 100))
    elif kind == "header":  # a WAV header announcing 1 s, no samples
        p.write_bytes(WAV_HEADER_ONLY)
    elif kind == "nonutf8":
        q = Path(os.fsdecode(bytes(d) + b"/bad\xff" + str(i).encode() + b".txt"))
        q.write_text("x")
        return str(q)
    return str(p)


def test_generated_inputs(template: Path, tmp_path: Path) -> None:
    rng = random.Random(SEED + 2)
    root = tmp_path / "ws"
    shutil.copytree(template, root, symlinks=True)
    ws = Workspace(root)
    good_bytes = ws.transcript_path("good").read_bytes()
    files = tmp_path / "in"
    files.mkdir()
    failures, n = [], 250
    for i in range(n):
        pick = rng.random()
        if pick < 0.45:
            arg = hostile_url(rng)
            args = ["fetch", arg, "--retries", "0", "--no-diarize"]
        elif pick < 0.8:
            arg = hostile_file(rng, files, i)
            args = ["fetch", arg, "--no-diarize"]
        else:
            at = rng.choice(["inf", "-inf", "nan", "1e309", "-1", "abc", "1:2:3:4", "99:99",
                             "0", "4.5", "", "1e-320", "0x10", "12:00:00"])  # fmt: skip
            args = ["cite", "good", "--at", at, "--style", rng.choice(["apa", "chicago", "ris"])]
        r = invoke([*args, "--workspace", str(root)])
        bad = problems(r)
        if "s3cret" in r.stdout + r.stderr:
            bad.append("a URL password printed")
        if i % 10 == 0:
            bad += intact(ws, good_bytes)
        if bad:
            shown = ascii(args)[:300]
            failures.append(f"seed {SEED + 2} case {i}: {shown}: {bad}: {r.stderr[-300:]!a}")
    failures += [f"after: {x}" for x in intact(ws, good_bytes)]
    if b"s3cret" in b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file()):
        failures.append("a URL password stored in the workspace")
    report(failures, n)


# --- 4. serve requests ---------------------------------------------------------------------


def test_generated_serve_requests(template: Path, tmp_path: Path) -> None:
    from servekit import start_server, stop_server

    rng = random.Random(SEED + 3)
    root = tmp_path / "ws"
    shutil.copytree(template, root, symlinks=True)
    ws = Workspace(root)
    base = json.loads(ws.transcript_path("good").read_text(encoding="utf-8"))
    for j in range(6):  # hostile transcripts beside the good one
        mutate_transcript(random.Random(SEED * 100 + j), base, root)
    good_bytes = ws.transcript_path("good").read_bytes()
    server = start_server(ws)
    try:
        page = server.request("/r/good")[2].decode(errors="replace")
        m = re.search(r'name="confindex-token" content="([^"]+)"', page)
        token = m.group(1) if m else "none"
        origin = f"http://{server.host}:{server.port}"
        junk = ["", "%00", "%ff", "..%2f..%2fetc%2fpasswd", "\u202e", "a" * 3000, "good", "bad",
                "zz-other", "good2", "%ud800", "<script>", "'\"", "1e309", "nan", "-1"]  # fmt: skip
        failures, n = [], 250
        for i in range(n):
            q = rng.choice(junk)
            kind = rng.choice(["search", "cite", "rec", "media", "page", "facets", "rename"])
            method, body, headers = "GET", None, {}
            from urllib.parse import quote

            if kind == "search":
                path = f"/api/search?q={quote(q)}&limit={quote(rng.choice(junk))}"
            elif kind == "cite":
                path = f"/api/cite?recording={quote(q)}&at={quote(rng.choice(junk))}"
            elif kind == "rec":
                path = f"/api/recordings/{quote(q, safe='')}"
            elif kind == "media":
                path = f"/media/{quote(q, safe='')}"
            elif kind == "page":
                path = rng.choice(["/r/", "/search?q=", "/speakers?x=", "/status?"]) + quote(q)
            elif kind == "facets":
                path = f"/api/facets?q={quote(q)}"
            else:
                method = "POST"
                path = f"/api/recordings/good/speakers/{rng.choice(['NOPE', quote(q, safe='')])}"
                headers = {"Origin": origin, "X-Confindex-Token": token,
                           "Content-Type": "application/json"}  # fmt: skip
                body = rng.choice(
                    [b"[" * 100000 + b"]" * 100000, b'{"name": ' * 5000, b"\xff\xfe",
                     b'{"name": "\\ud800"}', b'{"name": ["x"]}', b"", b"null",
                     json.dumps({"name": "x" * 100000}).encode(), b'{"name": 1e999}']
                )  # fmt: skip
            try:
                status, _h, _b = server.request(path, method=method, headers=headers, body=body)
            except OSError as exc:  # a timeout (30 s) is a hang
                failures.append(f"seed {SEED + 3} case {i}: {method} {path[:80]!a}: {exc}")
                continue
            if status >= 500:
                failures.append(f"seed {SEED + 3} case {i}: {method} {path[:80]!a}: {status}")
        failures += [f"after: {x}" for x in intact(ws, good_bytes)]
    finally:
        stop_server(server)
    report(failures, n)
