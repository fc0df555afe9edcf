"""One list of export formats and citation styles (formats/registry.py) behind every choice:
a format `fetch --formats` writes is one `export --format` renders, the CLI's choices are the
registry's, and each style `cite --style` offers renders."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from conftest import run
from servekit import PANEL_ID, make_workspace

from confindex.cli import cli
from confindex.formats import registry
from confindex.formats.export import parse_formats


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return make_workspace(tmp_path_factory.mktemp("registry") / "ws")


def _choices(command: str, option: str) -> list[str]:
    cmd = cli.get_command(click.Context(cli), command)
    (opt,) = [p for p in cmd.params if option in getattr(p, "opts", [])]
    return list(opt.type.choices)


def test_cli_choices_are_the_registry() -> None:
    assert _choices("export", "--format") == list(registry.EXPORT_FORMATS)
    assert _choices("cite", "--style") == [*registry.CITATION_STYLES, "all"]
    assert parse_formats("all") == list(registry.WRITTEN_BESIDE)
    assert parse_formats(",".join(registry.WRITABLE)) == list(registry.WRITABLE)


@pytest.mark.parametrize("fmt", registry.WRITABLE)
def test_every_format_fetch_writes_is_one_export_renders(ws, tmp_path: Path, fmt: str) -> None:
    assert parse_formats(fmt) == [fmt]  # `fetch --formats FMT` takes it
    out = tmp_path / registry.file_name(PANEL_ID, fmt)
    r = run("export", PANEL_ID, "--format", fmt, "-o", str(out), ws=ws)
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 0
    if fmt == "rttm":  # speaker segments, no words
        assert "SPEAKER panel-script 1 0.500 6.870" in out.read_text(encoding="utf-8")
    elif not registry.FORMATS[fmt].binary:
        assert "Soyouz" in out.read_text(encoding="utf-8")  # the panel's words, rendered


@pytest.mark.parametrize("style", registry.CITATION_STYLES)
def test_every_citation_style_renders(ws, style: str) -> None:
    r = run("cite", PANEL_ID, "--at", "0:05", "--style", style, ws=ws)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip()
