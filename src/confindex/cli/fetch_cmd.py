"""`confindex fetch` and `confindex transcribe`: thin wrappers over confindex.run.pipeline."""

from __future__ import annotations

import click

from confindex.cli.common import json_option, print_json, stderr_console, workspace_option
from confindex.cli.output import plural
from confindex.cli.progress import ConsoleReporter
from confindex.errors import ConfindexError
from confindex.run.job import FetchOptions
from confindex.speech.asr import VAD_MIN_SILENCE_MS, VAD_PAD_MS, VAD_THRESHOLD
from confindex.timefmt import hms


def transcription_options(f):
    """Options shared by fetch, transcribe and eval."""
    opts = [
        click.option(
            "--model",
            "-m",
            default=None,
            metavar="NAME|DIR",
            help="Whisper model: a local CTranslate2 directory, or a name such as "
            "large-v3 fetched from the Hugging Face Hub (online). "
            "Default: the embedded multilingual base model.",
        ),
        click.option(
            "--device",
            type=click.Choice(["auto", "cpu", "cuda"]),
            default="auto",
            show_default=True,
            help="auto = CUDA when CTranslate2 sees a GPU.",
        ),
        click.option(
            "--compute-type",
            default=None,
            metavar="TYPE",
            help="CTranslate2 compute type (default: float16 on CUDA, int8 on CPU).",
        ),
        click.option(
            "--language",
            "-l",
            default=None,
            metavar="CODE",
            help="Spoken language (en, fr, ru, …); default: detect.",
        ),
        click.option(
            "--languages",
            default=None,
            metavar="CODES",
            callback=_parse_languages,
            help="Languages that may be spoken, e.g. fr,ru,en: each speaker turn is "
            "detected among these only. Default: any language Whisper knows.",
        ),
        click.option(
            "--multilingual",
            is_flag=True,
            hidden=True,
            help="Kept for old scripts: the language is now detected for every speaker turn.",
        ),
        click.option(
            "--batch-size",
            type=click.IntRange(min=0),
            default=None,
            help="Chunks decoded at once by the batched pipeline; 0 = sequential. "
            "Default: 8 on CPU, 16 on CUDA.",
        ),
        click.option("--beam-size", type=click.IntRange(min=1), default=5, show_default=True),
        click.option(
            "--initial-prompt",
            default=None,
            metavar="TEXT",
            help="Context that steers spelling, e.g. speakers' names.",
        ),
        click.option(
            "--hotwords",
            default=None,
            metavar="WORDS",
            help="Words to favour: proper names, jargon.",
        ),
        click.option(
            "--vad/--no-vad",
            default=True,
            show_default=True,
            help="Skip non-speech with Silero VAD.",
        ),
        click.option(
            "--vad-threshold",
            type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
            default=VAD_THRESHOLD,
            show_default=True,
            help="Speech probability above which Silero VAD hears speech.",
        ),
        click.option(
            "--vad-min-silence",
            "vad_min_silence_ms",
            type=click.IntRange(min=0),
            default=VAD_MIN_SILENCE_MS,
            show_default=True,
            metavar="MS",
            help="Silence (ms) that ends a piece of speech.",
        ),
        click.option(
            "--vad-pad",
            "vad_pad_ms",
            type=click.IntRange(min=0),
            default=VAD_PAD_MS,
            show_default=True,
            metavar="MS",
            help="Audio (ms) kept on each side of a piece of speech.",
        ),
        click.option(
            "--cpu-threads",
            type=click.IntRange(min=0),
            default=0,
            help="CPU threads for CTranslate2 (0 = its default).",
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _parse_languages(ctx, param, value: str | None) -> tuple[str, ...] | None:
    """--languages fr,ru,en → ("fr", "ru", "en"), each checked against Whisper's codes."""
    if value is None:
        return None
    codes = tuple(dict.fromkeys(c.strip().lower() for c in value.split(",") if c.strip()))
    if not codes:
        raise click.BadParameter("give language codes such as fr,ru,en")
    from confindex.errors import InputError
    from confindex.run.options import check_language_codes

    try:
        check_language_codes(codes)
    except InputError as exc:
        raise click.BadParameter(exc.message) from None
    return codes


def diarization_options(f):
    opts = [
        click.option(
            "--diarize/--no-diarize",
            default=True,
            show_default=True,
            help="Split into speaker turns with the offline diarization model.",
        ),
        click.option(
            "--num-speakers",
            type=click.IntRange(min=1),
            default=None,
            help="Exact number of speakers, when known.",
        ),
        click.option("--min-speakers", type=click.IntRange(min=1), default=None),
        click.option("--max-speakers", type=click.IntRange(min=1), default=None),
        click.option(
            "--diarization-model",
            default=None,
            metavar="DIR",
            help="Folder with other sherpa-onnx models (segmentation.onnx, embedding.onnx).",
        ),
        click.option(
            "--keep-edits/--discard-edits",
            "keep_edits",
            default=True,
            show_default=True,
            help="Keep the words users corrected (`confindex edit`) over a new transcription.",
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def option_kwargs(kw: dict) -> dict:
    """The transcription keyword arguments of `Archive.fetch`/`transcribe` in click's `kw`
    (popped from it)."""
    from confindex.errors import InputError
    from confindex.run.job import FetchOptions
    from confindex.run.options import ASR_KEYS, MODEL_KEYS, check_language_codes

    try:
        check_language_codes([kw["language"]] if kw.get("language") else [])
        FetchOptions.check(
            min_speakers=kw.get("min_speakers"),
            max_speakers=kw.get("max_speakers"),
            language=kw.get("language"),
            languages=kw.get("languages"),
        )
    except InputError as exc:
        raise click.UsageError(exc.message) from None
    kw.pop("multilingual", None)  # kept for old scripts: every speaker turn is detected now
    return {k: kw.pop(k) for k in (*ASR_KEYS, *MODEL_KEYS) if k in kw}


def build_options(kw: dict, **extra) -> FetchOptions:
    """FetchOptions from the click keyword arguments of the options above."""
    from confindex.run.options import build_options as run_build_options

    return run_build_options(**option_kwargs(dict(kw)), **extra)


def print_summary(console, summary) -> None:
    """The end-of-run line (done, skipped, failed, hours, wall time, × realtime) and failures."""
    from rich.text import Text

    from confindex.cli.output import hanging, text

    d = summary.to_dict()
    rtf = f", {d['realtime_factor']:.1f}× realtime" if d["realtime_factor"] else ""
    # Two short lines rather than one that wraps mid-phrase at 80 columns.
    console.print(
        f"{d['done']} done, {d['skipped']} skipped, {d['failed']} failed", highlight=False
    )
    if d["audio_seconds"]:
        console.print(
            f"{d['audio_hours']:.2f} h ({hms(d['audio_seconds'])}) of audio in "
            f"{hms(d['wall_seconds'])}{rtf}",
            highlight=False,
        )
    # Why each skip and failure happened, not only in --json; a long one wraps with a hanging
    # indent (it once broke "`confindex" / "retry-failed`" back at column 0).
    for r in summary.results:
        if r.status == "skipped":
            why = r.reason or "already done"
            said = text(f"skipped {r.recording_id or r.source}: {why}", "yellow")
            hanging(said, indent=0, out=console)
    for r in summary.failed:
        why = f"{r.source}: {r.error or ''}"
        why += f" ({r.reason})" if r.reason else ""
        line = Text()
        line.append("failed ", style="red")  # a span: a red base style would colour it all
        hanging(line.append_text(text(why)), indent=0, out=console)


def _formats(value: str | None) -> list[str] | None:
    """`--formats srt,vtt|all|none` → the export list; a bad name is a usage error (exit 2)."""
    from confindex.errors import InputError
    from confindex.formats.export import parse_formats

    if value is None:
        return None  # the workspace config's [fetch] formats, else all
    try:
        return parse_formats(value)
    except InputError as exc:
        raise click.BadParameter(exc.message) from None


def login_options(username: str | None, password: str | None, use_netrc: bool) -> dict:
    """yt-dlp's login options for `--username/--password/--netrc` (kept in memory only)."""
    if password is not None and username is None:
        raise click.BadParameter("--password needs --username", param_hint="--password")
    out: dict = {"usenetrc": True} if use_netrc else {}
    if username is not None:
        out.update(username=username, password=password or "")
    return out


def bulk_options(f):
    """Options of bulk runs: playlist filters, batch files, pipelining, yt-dlp politeness."""
    opts = [
        click.option(
            "--batch-file",
            "-a",
            "batch_files",
            multiple=True,
            metavar="FILE",
            help="File with one URL or path per line (# comments); '-' reads stdin.",
        ),
        click.option(
            "--match-title", default=None, metavar="REGEX", help="Playlists: only matching titles."
        ),
        click.option(
            "--date-after",
            default=None,
            metavar="DATE",
            help="Playlists: uploaded on or after DATE (YYYYMMDD, YYYY-MM-DD, today-2weeks).",
        ),
        click.option(
            "--date-before", default=None, metavar="DATE", help="Playlists: on or before DATE."
        ),
        click.option(
            "--max-recordings",
            type=click.IntRange(min=1),
            default=None,
            help="Playlists: at most N recordings from each.",
        ),
        click.option(
            "--download-workers",
            type=click.IntRange(min=0),
            default=1,
            show_default=True,
            help="Downloads running ahead of transcription (0 = one thing at a time).",
        ),
        click.option(
            "--sleep-interval",
            type=click.FloatRange(min=0),
            default=None,
            metavar="SECONDS",
            help="Wait before each download (be polite to the site).",
        ),
        click.option(
            "--limit-rate", default=None, metavar="RATE", help="Download rate limit, e.g. 500K, 2M."
        ),
        click.option("--cookies", default=None, metavar="FILE", help="Netscape cookies file."),
        click.option(
            "--cookies-from-browser",
            default=None,
            metavar="BROWSER[:PROFILE]",
            help="Take cookies from a browser (firefox, chrome, …).",
        ),
        click.option(
            "--username",
            default=None,
            help="Login for sites that need one (HTTP basic auth or the site's own); not stored.",
        ),
        click.option(
            "--password",
            default=None,
            help="Password for --username (a password in the URL is taken out the same way).",
        ),
        click.option(
            "--netrc",
            "use_netrc",
            is_flag=True,
            help="Take logins from ~/.netrc (the machine line of the URL's host).",
        ),
        click.option(
            "--retries",
            type=click.IntRange(min=0),
            default=3,
            show_default=True,
            help="Retries with back-off on HTTP 429/5xx and network errors.",
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def executor_options(f):
    """`--executor`, `--workers`, `--scheduler`: where the transcription jobs run."""
    opts = [
        click.option(
            "--executor",
            type=click.Choice(["local", "dask"]),
            default="local",
            show_default=True,
            help="local: this process (downloads overlap one transcription loop); "
            "dask: Dask workers (see --workers, --scheduler).",
        ),
        click.option(
            "--workers",
            type=click.IntRange(min=1),
            default=None,
            metavar="N",
            help="Start a Dask LocalCluster of N worker processes here (one model each).",
        ),
        click.option(
            "--scheduler",
            default=None,
            metavar="tcp://HOST:PORT",
            help="Run the jobs on a running Dask cluster (`dask scheduler` + `dask worker`).",
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def executor_from(kw: dict):
    from confindex.run.executors import ExecutorOptions

    return ExecutorOptions(
        kw.pop("executor", "local"), kw.pop("workers", None), kw.pop("scheduler", None)
    )


def run_bulk(ws, run, *, quiet: bool, as_json: bool, single_error: bool):
    """Run `run(reporter) -> RunSummary` (an Archive method); print --json or the summary;
    exit 1 on failures."""
    console = stderr_console()
    # With --json, progress still shows when stderr is a terminal (stdout carries the JSON).
    with ConsoleReporter(console, quiet=quiet or (as_json and not console.is_terminal)) as reporter:
        summary = run(reporter)
    if as_json:
        print_json(
            {
                "workspace": str(ws.root),
                "wall_seconds": round(summary.wall_seconds, 3),
                "summary": summary.to_dict(),
                "recordings": [r.to_dict() for r in summary.results],
            }
        )
    elif single_error and len(summary.results) == 1 and summary.failed:
        failed = summary.failed[0]
        hint = f" ({failed.reason})" if failed.reason else ""
        raise ConfindexError((failed.error or "failed") + hint)
    elif not quiet:
        print_summary(console, summary)
    if summary.failed:
        raise click.exceptions.Exit(1)
    return summary


@click.command()
@click.argument("inputs", nargs=-1, metavar="URL|FILE|DIR...")
@transcription_options
@diarization_options
@bulk_options
@executor_options
@click.option("--force", is_flag=True, help="Transcribe again even if already done.")
@click.option("--no-index", is_flag=True, help="Write transcripts but do not index them.")
@click.option(
    "--formats",
    "-f",
    metavar="LIST",
    default=None,
    callback=lambda ctx, param, value: _formats(value),
    help="Exports to write: all (default: srt,vtt,txt,md,rttm), none, or a list; also "
    "eaf,exb,maxqda,atlasti,nvivo,docx for analysis tools.",
)
@click.option(
    "--output-dir",
    "-P",
    metavar="DIR",
    default=None,
    help="Folder for the exports (created; default: beside the transcript in transcripts/).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@json_option
@workspace_option
def fetch(inputs, ws, as_json, force, no_index, quiet, batch_files, formats, output_dir, **kw):
    """Download, transcribe, split into speaker turns and index recordings.

    Each input is a URL (YouTube, any site yt-dlp knows, a plain media URL, a playlist or a
    channel), a local media file or a folder of them; `-a FILE` reads a list. Every recording
    is tracked in the workspace's job ledger: rerun the same command (or `confindex resume`)
    after a crash or Ctrl-C and only unfinished work is done; `confindex status` shows progress.

    \b
    Examples:
      confindex fetch samples/panel.ogg
      confindex fetch https://www.youtube.com/watch?v=u2SCITorY2A --model large-v3
      confindex fetch -a urls.txt ./recordings/ --download-workers 2 --limit-rate 2M
      confindex fetch -a urls.txt --workers 2
      confindex fetch -a urls.txt --scheduler tcp://10.0.0.5:8786
      confindex fetch "https://www.youtube.com/@ConfChannel" --date-after 20240101 \\
          --match-title "keynote|panel" --max-recordings 50
    """
    from confindex.api import Archive

    if not inputs and not batch_files:
        raise click.UsageError("give URLs, files or folders, or a batch file with -a")
    opts = option_kwargs(kw)
    ex = executor_from(kw)
    single = len(inputs) + len(batch_files) == 1

    def run(reporter):
        return Archive(ws).fetch(
            *inputs,
            batch_files=batch_files,
            match_title=kw.pop("match_title"),
            date_after=kw.pop("date_after"),
            date_before=kw.pop("date_before"),
            max_recordings=kw.pop("max_recordings"),
            force=force,
            index=not no_index,
            formats=formats,
            output_dir=output_dir,
            download_workers=kw.pop("download_workers"),
            retries=kw.pop("retries"),
            sleep_interval=kw.pop("sleep_interval"),
            limit_rate=kw.pop("limit_rate"),
            cookies=kw.pop("cookies"),
            cookies_from_browser=kw.pop("cookies_from_browser"),
            ydl_extra=login_options(kw.pop("username"), kw.pop("password"), kw.pop("use_netrc")),
            executor=ex.kind,
            workers=ex.workers,
            scheduler=ex.scheduler,
            reporter=reporter,
            **opts,
        )

    run_bulk(ws, run, quiet=quiet, as_json=as_json, single_error=single)


@click.command()
@click.argument("recording", metavar="ID|FILE|URL")
@transcription_options
@diarization_options
@click.option(
    "--undo",
    is_flag=True,
    help="Restore the version before the last overwrite (kept in transcripts/.history/).",
)
@click.option(
    "--span",
    metavar="START-END",
    help="Re-decode only this part (12:30-14:00) and splice it in; the rest is kept.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@json_option
@workspace_option
def transcribe(recording, ws, as_json, quiet, undo, span, **kw):
    """Transcribe one recording again (new model or options); speaker names are kept.

    RECORDING is a recording id (or unique prefix) of this workspace, or a file/URL. With
    --span, only that part is decoded again (e.g. a passage `confindex review` flagged).

    \b
    Examples:
      confindex transcribe youtube-u2SCITorY2A --language fr --initial-prompt "Jean-Loup Chrétien"
      confindex transcribe ./panel.mp4 --batch-size 8
      confindex transcribe youtube-u2SCITorY2A --undo
      confindex transcribe panel --span 0:30-0:45 --beam-size 8 --hotwords "Soïouz"
    """
    from confindex.api import Archive

    archive = Archive(ws)
    if undo and span is not None:
        raise click.UsageError("--undo restores a whole version: it takes no --span")
    if undo:
        t = archive.undo(recording)
        if as_json:
            print_json({"recording": t.id, "restored": True})
        elif not quiet:
            click.echo(f"{t.id}: earlier version restored; exports and index updated")
        return
    opts = option_kwargs(kw)
    console = stderr_console()
    with ConsoleReporter(console, quiet=quiet or (as_json and not console.is_terminal)) as reporter:
        if span is not None:
            outcome = archive.transcribe_span(recording, span, reporter=reporter, **opts)
        else:
            outcome = archive.transcribe(recording, reporter=reporter, **opts)
    if as_json:
        print_json(outcome.to_dict())
    if outcome.status == "failed":
        raise ConfindexError(outcome.error or "transcription failed")
    if not as_json and not quiet:
        console.print(f"{outcome.recording_id}: {plural(outcome.turns, 'turn')}")
