"""The Python examples of README.md ("Python API") and docs/python-api.md run as written.

Real parts: the embedded Whisper model and the diarization models on the bundled sample, run
in a subprocess from a folder that holds `samples/` as the README assumes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, SAMPLES, assert_no_traceback

pytestmark = pytest.mark.slow

FENCE = re.compile(r"```python\n(.*?)```", re.DOTALL)


def blocks(text: str) -> list[str]:
    return FENCE.findall(text)


def run_blocks(code: list[str], cwd: Path, name: str = "example.py") -> str:
    if not (cwd / "samples").exists():
        (cwd / "samples").symlink_to(SAMPLES, target_is_directory=True)
    script = cwd / name
    script.write_text("\n".join(code), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("CONFINDEX_HOME", None)
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert_no_traceback(proc.stderr, "the documented example")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_readme_python_api_example_runs(tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    code = blocks(section)
    assert code, "README's Python API section has no example"
    out = run_blocks(code, tmp_path)
    assert "cold war" in out.lower()  # the hit's snippet is printed
    assert (tmp_path / "demo" / "transcripts").is_dir()


def test_docs_python_api_examples_run_in_order(tmp_path):
    pytest.importorskip("distributed")  # its last example runs on a Dask LocalCluster
    code = blocks((REPO / "docs" / "python-api.md").read_text(encoding="utf-8"))
    assert len(code) >= 7
    # The Dask example is a script of its own (its workers import it again): run it apart.
    *code, dask_example = code
    assert "workers=" in dask_example
    out = run_blocks(code, tmp_path) + run_blocks([dask_example], tmp_path, "dask_example.py")
    assert "refused before any work: unknown language code 'klingon'" in out
    assert "1 done; 0 failed" in out
    # Mentions: the words' own second and link, matched words marked.
    assert re.search(r"^ +\d+\.\ds  file://\S+#t=\d+  .*\*\*orbit\*\*", out, re.M)
    assert "\nMarc Lefèvre\n" in out  # renamed
    assert "name kept: True" in out  # and still named after transcribe(diarize=False)
    assert "\nlisted: panel-" in out
    assert "index up to date: True - []" in out
    assert "\n1 subtitle file(s)\n" in out
    assert "- recordings left: 0" in out
    assert len(list((tmp_path / "subtitles").glob("panel-*.srt"))) == 1
    # On a Dask worker process: done, found by search.
    assert re.search(r"^done panel-\S+ on Dask worker tcp://127\.0\.0\.1:\d+$", out, re.M)
    assert "\n1 hit(s)\n" in out
