"""README's Usage section works as printed (issue 15, acceptance 1).

After the README's own set-up (`make demo`: a `.venv` with confindex, the sample fetched into
the workspace `demo/`), every command line of the Usage section's `sh` blocks is run, in order,
as a subprocess of the installed `confindex` script: each must exit 0 and print something.
`. .venv/bin/activate` is what PATH does here; `export VAR=value` lines set the environment.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, assert_no_traceback

from confindex.timefmt import hms

BIN = Path(sys.executable).parent


SHELL_BLOCK = re.compile(r"```(?:sh|bash|shell|zsh)\n(.*?)```", re.S)


def usage_lines(readme: str) -> list[str]:
    """The command lines of every shell block of the Usage section, its subsections included
    (so lines other engineers add anywhere under `## Usage` are run too); a line ending in `\\`
    goes on in the next one, as in a shell."""
    section = re.split(r"(?m)^## Usage.*$", readme, maxsplit=1)[1]
    section = re.split(r"(?m)^## ", section, maxsplit=1)[0]
    lines = []
    for block in SHELL_BLOCK.findall(section):
        for x in re.sub(r"\s*\\\n\s*", " ", block).splitlines():
            if x.strip() and not x.lstrip().startswith("#"):
                lines.append(x.strip())
    return lines


def test_usage_lines_are_read_as_a_shell_reads_them():
    readme = """## Usage
```sh
confindex a   # a comment
# a whole-line comment
confindex b \\
    --long
```
### a subsection
```bash
confindex c
```
```
$ output, not a command
```
## Next
```sh
confindex not-usage
```
"""
    assert usage_lines(readme) == ["confindex a   # a comment", "confindex b --long", "confindex c"]


def test_usage_section_lists_the_commands_it_documents():
    lines = usage_lines((REPO / "README.md").read_text(encoding="utf-8"))
    words = {shlex.split(x, comments=True)[1] for x in lines if x.startswith("confindex ")}
    # every everyday command is shown in a line that runs
    for cmd in ("fetch", "search", "show", "cite", "export", "speakers", "list", "index"):
        assert cmd in words, cmd
    assert not any(">" in shlex.split(x, comments=True) for x in lines)  # no shell redirection


def test_one_stated_test_time():
    """README's `make test` line and the Makefile state the same measured time, no placeholder."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    make = (REPO / "Makefile").read_text(encoding="utf-8")
    said = re.search(r"make test .*\(offline; about (\d+) minutes on 2 cores\)", readme)
    assert said, "README's make test line must state the suite's time"
    assert f"about {said.group(1)} minutes on 2 cores" in make


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    """A folder like the repository root after `make demo`: samples/ and the demo workspace."""
    if not (BIN / "confindex").exists():
        pytest.skip("the confindex script is not installed in this environment")
    root = tmp_path_factory.mktemp("clone")
    # the repository's files as a clone has them (README lines may name samples/, docs/, …)
    for entry in REPO.iterdir():
        if entry.name not in ("demo", ".venv", ".git") and not entry.name.startswith("."):
            (root / entry.name).symlink_to(entry)
    shared = root.parent / "shared"  # README's `../shared/data/…` (the real recordings)
    if (REPO.parent / "shared").exists() and not shared.exists():
        shared.symlink_to(REPO.parent / "shared")
    make = (REPO / "Makefile").read_text()
    demo = re.search(r"\$\(BIN\)/confindex (fetch samples/panel\.ogg --workspace \$\(DEMO\))", make)
    assert demo, "the Makefile's demo target changed: update this test"
    args = shlex.split(demo.group(1).replace("$(DEMO)", "demo"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    p = subprocess.run([BIN / "confindex", *args], cwd=root, env=env, capture_output=True)
    assert p.returncode == 0, p.stderr.decode()
    assert_no_traceback(p.stderr, "make demo's fetch")
    return root


def unhyphenated(text: str) -> str:
    return re.sub(r"(?<=[a-z])-(?=[a-z])", "", text)


# The chapter's title is made of the words Whisper heard at 00:00:08, and those turn on the CPU's
# int8 maths (bench/README.md, "Words differ between the two CPUs"): "Soviet Soyuz" on an Intel
# Xeon, "Soviet-Soyer spacecraft" on an AMD EPYC. The chapter, its second and the title's
# first words must be there; the rest of the title is the recogniser's.
_CHAPTER = re.compile(r"(§ American Apollo, Soviet)[^\[\n]*(\[00:00:08\])")


def cpu_neutral(text: str) -> str:
    return _CHAPTER.sub(r"\1… \2", unhyphenated(text))


def _chapter_at(demo_dir: Path, env: dict[str, str], second: float) -> dict:
    """The demo recording's chapter holding `second`, as `confindex chapters --json` says."""
    import json

    (path,) = (demo_dir / "demo" / "transcripts").glob("*.json")
    p = subprocess.run([BIN / "confindex", "-w", "demo", "chapters", path.stem, "--json"],
                       cwd=demo_dir, env=env, capture_output=True, text=True)  # fmt: skip
    assert p.returncode == 0, p.stderr
    return next(c for c in json.loads(p.stdout)["chapters"] if c["start"] <= second < c["end"])


@pytest.mark.slow
def test_the_demo_output_is_what_readme_prints(demo_dir: Path):
    """README's first example (`confindex -w demo search "cold war"` after `make demo`) prints
    what README shows, the local path aside (README writes it `…`); the French example finds
    what README says. Runs before the Usage lines, which rename a speaker."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```\n\$ (\.venv/bin/confindex -w demo search .*?)\n(.*?)```", readme, re.S)
    assert block, "README's demo output block moved: update this test"
    argv = shlex.split(block.group(1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFINDEX")}
    env.update(HF_HUB_OFFLINE="1", COLUMNS="80")
    env.pop("NO_COLOR", None)
    p = subprocess.run([BIN / "confindex", *argv[1:]], cwd=demo_dir, env=env, capture_output=True,
                       text=True)  # fmt: skip
    assert p.returncode == 0, p.stderr
    shown = re.sub(r"file:///\S*/samples/", "file:///…/samples/", p.stdout)
    # Whisper's spelling of a word it may hyphenate turns on the CPU's maths: "co-operation"
    # on an AMD EPYC, "cooperation" on an Intel Xeon (same weights, same audio, int8), and so
    # does the end of the chapter's title (cpu_neutral). Only those may differ: the second,
    # the speaker, the recording's title, the link and every other character may not.
    # Where the topic changes turns on them too: on an AMD Zen 5 (CPU family 26) the words and
    # pauses make 00:00:33 a boundary (score 1.64, cut-off 1.45; 1.45 is what the tuning's
    # phone-call -> JFK join needs), so the hit's chapter starts there. The § line must be the
    # chapter `confindex chapters` gives for the hit's second, whichever it is, and README's
    # own line where the chapter is README's (Zen 4, Intel).
    chapter = _chapter_at(demo_dir, env, 53.0)
    line = next(x.strip() for x in shown.splitlines() if x.strip().startswith("§ "))
    assert line == f"§ {chapter['title']} [{hms(chapter['start'])}]", (line, chapter)
    if hms(chapter["start"]) != "00:00:08":
        readme_line = re.search(r"§ [^\n]*", block.group(2)).group(0)
        shown = shown.replace(line, readme_line)
    assert "§ American Apollo, Soviet" in shown, shown
    assert cpu_neutral(shown) == cpu_neutral(block.group(2)), shown
    french = re.search(r"\(`\"(diplomatie spatiale)\"` → `(\[[0-9:]+\] \w+)`\)", readme)
    assert french, "README's French example moved: update this test"
    p = subprocess.run([BIN / "confindex", "-w", "demo", "search", french.group(1)], cwd=demo_dir,
                       env=env, capture_output=True, text=True)  # fmt: skip
    assert f" 1. {french.group(2)} · " in p.stdout, p.stdout


@pytest.mark.slow
def test_every_usage_line_runs_as_printed(demo_dir: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFINDEX")}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", HF_HUB_OFFLINE="1")
    env.update(COLUMNS="80")
    ran, failed = 0, []
    for line in usage_lines((REPO / "README.md").read_text(encoding="utf-8")):
        argv = shlex.split(line, comments=True)
        if argv[0] in (".", "source"):
            assert argv[1] == ".venv/bin/activate"
            continue  # what activation does: BIN is first on PATH
        if argv[0] == "export":
            key, value = argv[1].split("=", 1)
            env[key] = value
            continue
        assert argv[0] == "confindex", (
            f"README's Usage shows {line!r}: only confindex lines (after `. .venv/bin/activate`"
            " and `export VAR=…`) run against the demo workspace; put set-up elsewhere"
        )
        if argv[1:2] == ["serve"]:  # runs until Ctrl-C: start it, look at it, stop it
            check_serve(argv, demo_dir, env)
            ran += 1
            continue
        # As a shell runs it (quotes, `$VAR`, a pipe into `head`); no input, so a command that
        # waited for an answer fails instead of hanging the suite.
        p = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=demo_dir, env=env,
                           capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=600)  # fmt: skip
        assert_no_traceback(p.stderr, line)
        if p.returncode != 0 or not (p.stdout + p.stderr).strip():
            failed.append(f"$ {line}\n(exit {p.returncode})\n{p.stdout[-800:]}{p.stderr[-800:]}")
        ran += 1
    assert not failed, "README Usage lines that fail as printed:\n\n" + "\n\n".join(failed)
    assert ran >= 15
    assert (
        (demo_dir / "demo" / "subs" / next((demo_dir / "demo" / "subs").iterdir()).name)
        .read_text()
        .startswith("WEBVTT")
    )


def check_serve(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    """`confindex serve` from the README shows the sample's hits, and its /api/search is
    `confindex search --json` (on a free port: tests never take a fixed one)."""
    import json
    import signal
    from urllib.parse import quote
    from urllib.request import urlopen

    proc = subprocess.Popen(
        [*argv, "--port", "0"], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        line = proc.stdout.readline().decode() if proc.stdout else ""
        m = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        if not m:  # say why: what it wrote on stderr before it stopped
            proc.kill()
            raise AssertionError(f"serve printed {line!r}: {proc.communicate()[1].decode()}")
        with urlopen(m.group(1) + "search?q=" + quote("cold war"), timeout=30) as r:
            page = r.read().decode()
        assert "<mark>Cold War</mark>" in page and "[00:00:53]" in page
        with urlopen(m.group(1) + "api/search?q=" + quote("cold war"), timeout=30) as r:
            api = json.loads(r.read())
        cli = subprocess.run(
            ["confindex", "--json", "search", "cold war"], cwd=cwd, env=env, capture_output=True
        )
        assert api == json.loads(cli.stdout)
        with urlopen(m.group(1) + "status", timeout=30) as r:  # the job ledger of `fetch`
            status = r.read().decode()
        assert "1 recording in the job ledger" in status and "<th>indexed</th><td>1</td>" in status
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    assert_no_traceback(err, "confindex serve")
    assert proc.returncode == 0, err.decode()


def test_shell_completion_as_documented():
    """README: `eval "$(_CONFINDEX_COMPLETE=bash_source confindex)"` in ~/.bashrc completes
    commands and options."""
    if not (BIN / "confindex").exists():
        pytest.skip("the confindex script is not installed in this environment")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert 'eval "$(_CONFINDEX_COMPLETE=bash_source confindex)"' in readme
    env = {**os.environ, "_CONFINDEX_COMPLETE": "bash_source"}
    script = subprocess.run([BIN / "confindex"], env=env, capture_output=True, text=True).stdout
    assert "complete -o nosort -F _confindex_completion confindex" in script

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        env = {**os.environ, "_CONFINDEX_COMPLETE": "bash_complete",
               "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}  # fmt: skip
        out = subprocess.run([BIN / "confindex"], env=env, capture_output=True, text=True)
        return [x.split(",", 1)[1] for x in out.stdout.splitlines() if "," in x]

    assert complete("confindex sea") == ["search"]
    assert "--max-line-width" in complete("confindex export --max-")


@pytest.mark.slow
def test_samples_readme_search_figures_are_what_a_fresh_run_gives(demo_dir: Path):
    """samples/README.md's `eval search` figures (recall@10, time error mean and max) are what
    `confindex eval search` gives on the fresh `make demo` workspace (to their printed digits)."""
    import json

    text = (REPO / "samples" / "README.md").read_text(encoding="utf-8")
    said = re.search(
        r"recall@10 (\d)/(\d) .*?time error mean ([\d.]+) s, max ([\d.]+) s on an Intel Xeon, "
        r"mean ([\d.]+) s, max ([\d.]+) s on an AMD\s+EPYC",
        text,
        re.S,
    )
    assert said, "samples/README.md's eval search figures moved: update this test"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    p = subprocess.run(
        [BIN / "confindex", "-w", "demo", "--json", "eval", "search",
         "samples/panel.queries.json"],
        cwd=demo_dir, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    found, total = int(said.group(1)), int(said.group(2))
    assert (round(got["recall"] * total), got["queries"]) == (found, total)
    # Word times turn on the CPU's int8 maths (bench/README.md): the figures of one of the two
    # CPUs samples/README.md names, to their printed digits.
    fresh = [f"{got[k]:.{len(p.split('.')[1])}f}" for k, p in
             (("mean_time_error", said.group(3)), ("max_time_error", said.group(4)))]  # fmt: skip
    assert fresh in ([said.group(3), said.group(4)], [said.group(5), said.group(6)]), fresh
