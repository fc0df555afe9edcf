"""`search`, `show`, `cite`, `export`: read the archive (the index and the transcripts)."""

from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path
from typing import Any

import click

from confindex import sanitize
from confindex.cli.common import json_option, print_json, workspace_option
from confindex.formats.registry import CITATION_STYLES, EXPORT_FORMATS
from confindex.sanitize import terminal
from confindex.timefmt import hms

WIDTH = 80  # hits read best at most this wide, even on a wider terminal
INDENT = "    "


def _log(msg: str) -> None:
    click.echo(msg, err=True)


def _screen() -> tuple[Any, int, bool]:
    """stdout's console (output.py: --color, NO_COLOR, COLUMNS), the width to use, and whether
    matches can be styled (else they are marked **like this**)."""
    from confindex.cli.output import console

    out = console()
    return out, min(WIDTH, out.width), out.color_system is not None


def _line(out: Any, value: Any, width: int) -> None:
    """One line, cut with … at `width`."""
    out.print(value, width=width, no_wrap=True, overflow="ellipsis", crop=True)


def _para(out: Any, value: Any, width: int, indent: str = INDENT) -> None:
    """`value` (a rich Text) word-wrapped by rich into lines of `width`, indented."""
    from rich.text import Text

    for ln in value.wrap(out, width - len(indent)):
        ln.rstrip()
        out.print(Text(indent) + ln, width=width, no_wrap=True, crop=True)


def _marked(snippet: str, spans: list[tuple[int, int]], styled: bool) -> Any:
    """A hit's fragment with its matches bold yellow (a colour terminal) or **marked**."""
    from rich.text import Text

    if not styled:
        return Text(sanitize.mark_spans(snippet, spans, "**", "**", terminal))
    clean, moved = sanitize.with_spans(snippet, spans)
    t = Text(clean)
    for s, e in moved:
        t.stylize("bold yellow", s, e)
    return t


SEARCH_HELP = """Search the archive; a hit is a turn, and each mention in it (every place the
query is said) links to the second its first matched word is spoken.

\b
Query language (words are stemmed, case and accents do not matter):
  diplomatie spatiale      all the words (AND is the default); cites the
                           tightest passage holding them
  mars OR lune             either word
  budget -mars             excludes mars (also: budget NOT mars)
  "conseiller général"     phrase: in order, any inflected form
  ="conseiller général"    exact phrase: the written form only
  trois minutes  23        numbers match as digits or words (fr/en/ru)
  BFM TV  Jean Loup        also found written BFMTV, Jean-Loup
  diplomacie~  soyouz~2    fuzzy: 1 edit, or 2 (a swapped pair of letters is 1)
  diplo*                   prefix
  (mars OR lune) -budget   grouping
  speaker:Dupont           speaker name or label (speaker:SPEAKER_01,
                           speaker:"Marie Dupont")
  title:diplomatie  channel:ESA  lang:fr  recording:3f2a
  date:2023  date:2023-10-05  date:2023-10..2023-12  date:2024..
  at:10m..20m  at:1:02:03  after:1h  before:30m    time in the recording
  flag:loop  flag:lowconf  flag:nonspeech  flag:language  -flag:any
                                                    quality flags (confindex review)
  chapter:smartphones      turns of chapters whose title or keywords say it

\b
Examples:
  confindex search diplomatie spatiale
  confindex search '"space diplomacy" speaker:Dupont date:2023..'
  confindex search soiouz --context 1 --limit 5
  confindex search budget --group --format md > hits.md
  confindex search --semantic "pension reform" lang:fr
"""


class _SearchCommand(click.Command):
    """`search jersey -chicago`: the help's own `-word` syntax works unquoted. click would read
    `-chicago` as the short options -c -h -i …; a single-dash word that is not one of our short
    options with a plausible value becomes `NOT word` in the query."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        values = {"-n": str.isdigit, "-C": str.isdigit, "-w": lambda v: Path(v).is_dir()}
        out = []
        for a in args:
            if len(a) > 2 and a[0] == "-" and a[1] != "-" and a[1].isalpha():
                ok = values.get(a[:2])
                if ok is None or not ok(a[2:]):
                    out += ["NOT", a[1:]]
                    continue
            out.append(a)
        return super().parse_args(ctx, out)


@click.command(cls=_SearchCommand, help=SEARCH_HELP)
@click.argument("query", nargs=-1, required=True)
@click.option("--limit", "-n", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--offset", default=0, type=click.IntRange(0), help="Skip this many hits (paging).")
@click.option("--context", "-C", default=0, type=click.IntRange(0, 20), help="Turns before/after.")
@click.option("--group", is_flag=True, help="One hit per recording (its best turn).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "jsonl", "csv", "md"]),
    default="text",
    show_default=True,
)
@click.option("--cite", "with_cite", is_flag=True, help="Add an APA citation to each hit.")
@click.option(
    "--semantic",
    is_flag=True,
    help="Also find passages by meaning, in any language (hybrid: lexical and meaning hits "
    "fused; each hit a passage cited at its first word, marked lexical/semantic/both).",
)
@click.option("--jsonl", is_flag=True, help="One JSON object per hit and line (for jq, pipes).")
@json_option
@workspace_option
def search(
    query: tuple[str, ...],
    limit: int,
    offset: int,
    context: int,
    group: bool,
    fmt: str,
    with_cite: bool,
    semantic: bool,
    jsonl: bool,
    as_json: bool,
    ws: Any,
) -> None:
    from confindex.api import Archive

    if as_json:
        fmt = "json"
    if jsonl:
        fmt = "jsonl"
    archive = Archive(ws)
    result = archive.search(
        " ".join(query),
        limit=limit,
        offset=offset,
        group=group,
        context=context,
        log_fn=_log,
        semantic=semantic,
    )
    cites: dict[int, Any] = _citations(archive, result.hits) if with_cite else {}
    if fmt in ("json", "jsonl"):
        data = result.to_dict(offset, cites if with_cite else None)
        if fmt == "jsonl":
            import json

            from confindex.sanitize import json_text

            for d in data["hits"]:
                click.echo(json_text(json.dumps(d, ensure_ascii=False, default=str)))
            return
        print_json(data)
        return
    if fmt == "csv":
        _print_csv(result.hits, cites)
        return
    if fmt == "md":
        _print_md(result, cites)
        return
    _print_text(ws, result, offset, cites)


def _print_suggestions(suggestions: list[Any]) -> None:
    """Queries that do find hits (search/suggest.py), each ready to paste."""
    import shlex

    from confindex.sanitize import terminal

    if not suggestions:
        return
    click.echo("Try:")
    for s in suggestions:
        n = f"{s.hits:,} hit{'' if s.hits == 1 else 's'}"
        cmd = terminal("confindex search " + shlex.join([s.query]))
        click.echo(f"  {cmd}    ({terminal(s.reason)}: {n})")


def _citations(archive: Any, hits: list[Any]) -> dict[int, Any]:
    out, cache = {}, {}
    for h in hits:
        t = cache.get(h.recording_id) or archive.recording(h.recording_id)
        cache[h.recording_id] = t
        out[h.rank] = archive.cite(t, h.time)
    return out


def _print_text(ws: Any, result: Any, offset: int, cites: dict[int, Any]) -> None:
    from rich.text import Text

    from confindex.cli.output import text

    if not result.hits:
        if not ws.transcript_ids():
            _log(f"No transcripts in {ws.root} yet: run confindex fetch URL|FILE first.")
        else:
            click.echo(
                "No hits." if result.total == 0 else f"No hits past {offset} ({result.total})."
            )
            _print_suggestions(result.suggestions)
        return
    out, width, styled = _screen()
    what = "recording" if any(h.matches > 1 for h in result.hits) else "hit"
    what += "" if result.total == 1 else "s"
    shown = f"{offset + 1}–{offset + len(result.hits)}"
    count = ("" if result.exact else "about ") + f"{result.total:,}"
    # Titles, names, words and links come from outside: output.text (sanitize.terminal) keeps
    # escape sequences and control characters in them from reaching the terminal, and rich
    # never reads a Text as markup.
    query = text(result.query)
    query.truncate(max(10, width - 20 - len(count) - len(shown)), overflow="ellipsis")
    _line(out, Text(f"{count} {what} for ") + query + Text(f" (showing {shown})"), width)
    for h in result.hits:
        out.print()
        head = Text()  # bold spans, not a bold base style: that would make the title bold too
        head.append(f"{h.rank:>2}. [{hms(h.time)}] ", style="bold")
        head.append_text(text(h.speaker_name or "?", "bold"))
        if h.speaker_automatic:
            head.append(" (automatic)")
        head.append(" · ", style="bold")
        more = Text(f" ({h.matches} turns)" if h.matches > 1 else "")
        if h.match is not None:  # --semantic: how it matched, and how close in meaning
            sim = f" {h.similarity:.2f}" if h.similarity is not None else ""
            more += Text(f" [{h.match}{sim}]", style="dim")
        # The title is cut first, so channel and date stay readable at 80 columns; on a
        # narrower terminal the date, then the channel, give way before the title gets short.
        extra = [x for x in (h.channel, h.date) if x]
        while extra and width - len(head) - len(more) - sum(len(x) + 3 for x in extra) < 16:
            extra.pop()
        tail = text("".join(f" · {x}" for x in extra))
        source = text(h.title)
        source.truncate(max(10, width - len(head) - len(more) - len(tail)), overflow="ellipsis")
        _line(out, head + source + tail + more, width)
        if h.chapter:
            chapter = f"{INDENT}§ {h.chapter} [{hms(h.chapter_start or 0)}]"
            _line(out, text(chapter, "dim"), width)
        for ctx in h.before:
            _print_ctx(out, ctx, width)
        _para(out, _marked(h.snippet, h.spans, styled), width)
        for f in h.flags:
            # A flagged passage (quality.py): say so beside the words, with why.
            flag = text(f"⚑ {f.kind} {f.score:.2f} [{hms(f.start)}]: {f.reason}", "red")
            _line(out, Text(INDENT) + flag, width)
        for ctx in h.after:
            _print_ctx(out, ctx, width)
        # Links are never cut nor wrapped: a terminal makes them clickable only whole.
        out.print(Text(INDENT) + Text(sanitize.url(h.link), style="blue"), soft_wrap=True)
        for m in h.mentions[1:]:  # further mentions in the same turn, each with its own second
            also = Text(f"{INDENT}also at [{hms(m.time)}] ")
            out.print(also + Text(sanitize.url(m.link), style="blue"), soft_wrap=True)
        if h.rank in cites:
            _para(out, text(cites[h.rank].render("apa")), width)


def _print_ctx(out: Any, ctx: Any, width: int) -> None:
    from confindex.cli.output import text

    said = text(f"{INDENT}  [{hms(ctx.start)}] {ctx.speaker_name or '?'}: {ctx.text}", "dim")
    _line(out, said, width)


def _print_csv(hits: list[Any], cites: dict[int, Any]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    cols = ["rank", "recording_id", "title", "speaker_name", "date", "time", "hms", "link"]
    w.writerow([*cols, "fragment", "score", "flags", *(["citation"] if cites else [])])
    for h in hits:
        flags = " ".join(sorted({f.kind for f in h.flags}))  # the turn's passages
        for m in h.mentions or [h]:  # one row per mention
            row = [h.rank, h.recording_id, h.title, h.speaker_name, h.date, round(m.time, 2)]
            row += [hms(m.time), sanitize.url(m.link), m.fragment, h.score, flags]
            if cites:
                row.append(cites[h.rank].render("apa"))
            # Spreadsheets run cells starting with = + - @ as formulas: csv_cell makes them text.
            w.writerow([sanitize.csv_cell(x) for x in row])
    sys.stdout.write(buf.getvalue())


def _print_md(result: Any, cites: dict[int, Any]) -> None:
    count = ("" if result.exact else "about ") + f"{result.total:,}"
    click.echo(f"## {count} hits for {_md(result.query)}\n")
    if result.total == 0 and result.suggestions:
        click.echo("Try instead:\n")
        for s in result.suggestions:
            n = f"{s.hits:,} hit{'' if s.hits == 1 else 's'}"
            click.echo(f"- {_md(s.query)} — {_md(s.reason)}, {n}")
    for h in result.hits:
        fragment = sanitize.mark_spans(h.snippet, h.spans, "**", "**", _md)
        click.echo(
            f"{h.rank}. **{_md(h.title)}** — {_md(h.speaker_name or '?')}"
            f"{' (automatic)' if h.speaker_automatic else ''} "
            f"[{hms(h.time)}]({_md_url(h.link)})  \n   {fragment}"
            + "".join(f" ⚑ *{_md(f.kind)}: {_md(f.reason)}*" for f in h.flags)
        )
        for m in h.mentions[1:]:
            frag = sanitize.mark_spans(m.snippet, m.spans, "**", "**", _md)
            click.echo(f"   - also at [{hms(m.time)}]({_md_url(m.link)}): {frag}")
        if h.rank in cites:
            click.echo(f"   > {_md(cites[h.rank].render('apa'))}")


def _md_url(link: str) -> str:
    """A link destination: parentheses encoded too, so a `)` cannot end the link early."""
    return sanitize.url(link).replace("(", "%28").replace(")", "%29")


def _md(s: str) -> str:
    """Untrusted text as inert Markdown (raw HTML and Markdown syntax shown as text)."""
    return sanitize.markdown(s)


# ---------------------------------------------------------------------------------------------


def _at(value: str | None) -> float | None:
    from confindex.timefmt import parse_time

    return None if value is None else parse_time(value)


@click.command()
@click.argument("recording")
@click.option("--at", "at", metavar="TIME", help="Centre on this time (12:34, 754, 12m34s, 12m34).")
@click.option(
    "--around",
    "around_text",
    default="60",
    show_default=True,
    metavar="TIME",
    help="How much to show around --at (90, 1m, 1:30).",
)
@json_option
@workspace_option
def show(recording: str, at: str | None, around_text: str, as_json: bool, ws: Any) -> None:
    """Print a recording's transcript, whole or around a moment.

    \b
    Examples:
      confindex show 3f2a
      confindex show 3f2a --at 12:34 --around 30
    """
    from confindex.api import Archive
    from confindex.formats.links import link

    around = _at(around_text) or 0.0  # parsed before any transcript is read
    archive = Archive(ws)
    t = archive.recording(recording)
    when = _at(at)
    turns = archive.show(t, when, around)
    if as_json:
        print_json(
            {
                "recording": t.recording.id,
                "title": t.recording.title,
                "link": link(t.recording, when or 0.0),
                "turns": [
                    {
                        "id": x.id,
                        "start": x.start,
                        "end": x.end,
                        "speaker": x.speaker,
                        "speaker_name": t.speaker_name(x.speaker),
                        "text": x.text,
                    }
                    for x in turns
                ],
            }
        )
        return
    from rich.text import Text

    from confindex.cli.output import text

    out, width, _ = _screen()
    rec = t.recording
    meta = " · ".join(
        p for p in (rec.channel or rec.uploader, rec.upload_date, hms(t.duration)) if p
    )
    _line(out, text(rec.title, "bold"), width)
    _line(out, text(f"{rec.id} · {meta}"), width)
    out.print(Text(sanitize.url(link(rec, when or 0.0)), style="blue"), soft_wrap=True)
    if not turns:
        out.print("(no speech in that window)" if when is not None else "(no speech)")
    for x in turns:
        here = when is not None and x.start <= when <= x.end
        out.print()
        head = Text(f"{'>' if here else ' '}[{hms(x.start)}] ", style="bold")
        _line(out, head + text(t.speaker_name(x.speaker) or "?", "bold"), width)
        _para(out, text(" ".join(x.text.split())), width)


@click.command()
@click.argument("recording")
@click.option("--at", "at", metavar="TIME", help="The moment (12:34, 754, 12m34s, 12m34).")
@click.option("--span", metavar="START-END", help="Quote exactly the words starting in this span.")
@click.option(
    "--style",
    type=click.Choice([*CITATION_STYLES, "all"]),
    default="apa",
    show_default=True,
)
@json_option
@workspace_option
def cite(
    recording: str, at: str | None, span: str | None, style: str, as_json: bool, ws: Any
) -> None:
    """Cite what was said at a moment (its sentence) or exactly the words of a span: speaker,
    title, date, link with t= (#t=A,B on a media file), exact quote. Names the voice library
    gave are not authors until confirmed (`confindex speakers ID confirm`) or renamed.

    \b
    Examples:
      confindex cite 3f2a --at 12:34
      confindex cite 3f2a --at 754 --style bibtex >> refs.bib
      confindex cite 3f2a --at 12:34 --style ris >> refs.ris       # Zotero, Mendeley
      confindex cite 3f2a --at 12:34 --style csl > moment.json     # CSL-JSON (Pandoc)
      confindex cite 3f2a --span 12:34.2-12:41 --style chicago     # exactly these words
    """
    from confindex.api import Archive

    if (at is None) == (span is None):
        raise click.UsageError("give --at TIME or --span START-END")
    archive = Archive(ws)
    moment = _at(at) or 0.0
    c = archive.cite(recording, span=span) if span else archive.cite(recording, moment)
    if not span and not c.start - 0.5 <= moment <= c.end + 0.5:
        # A moment in a silence: the nearest sentence is cited — say so, not silently.
        click.echo(
            f"note: nothing is said at {hms(moment)}; citing the nearest sentence "
            f"({hms(c.start)}–{hms(c.end)})",
            err=True,
        )
    if as_json:
        print_json(c.to_dict())
        return
    styles = CITATION_STYLES if style == "all" else (style,)
    click.echo("\n\n".join(terminal(c.render(s), multiline=True) for s in styles))


@click.command()
@click.argument("recording", required=False)
@click.option("--all", "all_", is_flag=True, help="Export every recording (needs --output DIR).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(EXPORT_FORMATS),
    default="txt",
    show_default=True,
    help="Subtitles, text, Markdown, JSON, RTTM, or for analysis tools: ELAN (eaf), EXMARaLDA "
    "(exb), MAXQDA, ATLAS.ti, NVivo timestamped text, Word (docx).",
)
@click.option(
    "--output",
    "-o",
    metavar="PATH",
    help="File (one recording) or folder (an existing one, or a path ending in /: created).",
)
@click.option(
    "--max-line-width",
    type=click.IntRange(min=10),
    default=None,
    help="Subtitles: characters per line, speaker label included (default 42).",
)
@click.option(
    "--max-line-count",
    type=click.IntRange(min=1),
    default=None,
    help="Subtitles: lines per cue (default 2).",
)
@workspace_option
def export(
    recording: str | None,
    all_: bool,
    fmt: str,
    output: str | None,
    max_line_width: int | None,
    max_line_count: int | None,
    ws: Any,
) -> None:
    """Export transcripts as subtitles, text, Markdown, JSON, RTTM, or in the import formats of
    ELAN, EXMARaLDA, MAXQDA, ATLAS.ti, NVivo and Word.

    \b
    Examples:
      confindex export 3f2a --format srt > panel.srt
      confindex export --all --format vtt -o subtitles/
      confindex export 3f2a --format eaf -o elan/
      confindex export 3f2a --format docx -o panel.docx
    """
    from confindex.api import Archive
    from confindex.errors import InputError
    from confindex.formats.export import BINARY_FORMATS, file_name
    from confindex.store.workspace import atomic_write_bytes

    if all_ == bool(recording):
        raise InputError("give a RECORDING or --all (not both)")
    archive = Archive(ws)
    limits = {"max_line_width": max_line_width, "max_line_count": max_line_count}
    folder = None
    if output is not None and output != "-":
        # `-o subs/` means a folder even before it exists (as `cp` and yt-dlp's -P read it).
        as_dir = output.endswith(("/", os.sep)) or Path(output).is_dir() or all_
        folder = Path(output) if as_dir else None
    to_stdout = recording and (output is None or output == "-")
    if to_stdout and fmt in BINARY_FORMATS and sys.stdout.isatty():
        raise InputError(f"{fmt} is a binary file: give -o FILE (or redirect the output)")
    if recording:
        t = archive.recording(recording)
        data = archive.export_bytes(t, fmt, **limits)
        if to_stdout:
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            dest = folder / file_name(t.id, fmt) if folder else Path(output)
            atomic_write_bytes(dest, data)  # creates missing parent folders
            _log(f"wrote {dest}")
        return
    if folder is None:
        raise InputError("--all writes one file per recording: give a folder with --output DIR")
    n = len(archive.export_all(fmt, folder, **limits))
    _log(f"wrote {n} {fmt} file{'s' if n != 1 else ''} to {folder}")
