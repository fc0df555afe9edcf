"""`confindex fetch` and `confindex transcribe`: thin wrappers over confindex.pipeline."""

from __future__ import annotations

import click

from ..asr import AsrOptions, choose_device
from ..errors import ConfindexError
from ..pipeline import FetchOptions, Outcome, Transcriber, process, retranscribe
from ..timefmt import hms
from .common import json_option, print_json, stderr_console, workspace_option
from .progress import ConsoleReporter


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
            "--multilingual",
            is_flag=True,
            help="Detect the language of every 30-s window (mixed-language panels).",
        ),
        click.option(
            "--batch-size",
            type=click.IntRange(min=0),
            default=0,
            show_default=True,
            help="Batched inference (faster, esp. on GPU); 0 = sequential.",
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
            "--cpu-threads",
            type=click.IntRange(min=0),
            default=0,
            help="CPU threads for CTranslate2 (0 = its default).",
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


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
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def build_options(kw: dict, **extra) -> FetchOptions:
    """FetchOptions from the click keyword arguments of the options above."""
    min_s, max_s = kw.get("min_speakers"), kw.get("max_speakers")
    if min_s and max_s and min_s > max_s:
        raise click.UsageError(f"--min-speakers {min_s} is more than --max-speakers {max_s}")
    asr = AsrOptions(
        language=kw.get("language"),
        beam_size=kw.get("beam_size", 5),
        vad=kw.get("vad", True),
        batch_size=kw.get("batch_size", 0),
        initial_prompt=kw.get("initial_prompt"),
        hotwords=kw.get("hotwords"),
        multilingual=kw.get("multilingual", False),
    )
    return FetchOptions(
        model=kw.get("model"),
        device=kw.get("device", "auto"),
        compute_type=kw.get("compute_type"),
        cpu_threads=kw.get("cpu_threads", 0),
        asr=asr,
        diarize=kw.get("diarize", True),
        num_speakers=kw.get("num_speakers"),
        min_speakers=min_s,
        max_speakers=max_s,
        diarization_model=kw.get("diarization_model"),
        **extra,
    )


def print_summary(console, outcomes: list[Outcome], wall: float) -> None:
    done = [o for o in outcomes if o.status == "done"]
    skipped = [o for o in outcomes if o.status == "skipped"]
    failed = [o for o in outcomes if o.status == "failed"]
    audio = sum(o.audio_seconds for o in done)
    rtf = f", {audio / wall:.1f}× realtime" if done and wall > 0 else ""
    console.print(
        f"{len(done)} done, {len(skipped)} skipped, {len(failed)} failed; "
        f"{hms(audio)} of audio in {hms(wall)}{rtf}"
    )
    for o in failed:
        console.print(f"[red]failed[/] {o.source}: {o.error}", markup=True, highlight=False)


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="URL|FILE...")
@transcription_options
@diarization_options
@click.option("--force", is_flag=True, help="Transcribe again even if already done.")
@click.option("--no-index", is_flag=True, help="Write transcripts but do not index them.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@json_option
@workspace_option
def fetch(inputs, ws, as_json, force, no_index, quiet, **kw):
    """Download, transcribe, split into speaker turns and index recordings.

    Each input is a URL (YouTube, any site yt-dlp knows, a plain media URL) or a local
    media file. Finished recordings are skipped, so rerunning the same command resumes.

    \b
    Examples:
      confindex fetch samples/panel.ogg
      confindex fetch https://www.youtube.com/watch?v=u2SCITorY2A --model large-v3
      confindex fetch talk.mp4 --language fr --num-speakers 2 --hotwords "Soïouz Chrétien"
    """
    import time

    options = build_options(kw, force=force, index=not no_index)
    choose_device(options.device, options.compute_type)  # fail before any download
    console = stderr_console()
    transcriber = Transcriber(options)
    outcomes: list[Outcome] = []
    t0 = time.perf_counter()
    with ConsoleReporter(console, quiet=quiet or as_json) as reporter:
        for arg in inputs:
            outcomes.append(process(ws, arg, options, transcriber, reporter))
    wall = time.perf_counter() - t0
    failed = [o for o in outcomes if o.status == "failed"]
    if as_json:
        print_json(
            {
                "workspace": str(ws.root),
                "wall_seconds": round(wall, 3),
                "recordings": [o.to_dict() for o in outcomes],
            }
        )
    elif len(outcomes) == 1 and failed:
        raise ConfindexError(failed[0].error or "failed")
    elif not quiet:
        print_summary(console, outcomes, wall)
    if failed:
        raise click.exceptions.Exit(1)


@click.command()
@click.argument("recording", metavar="ID|FILE|URL")
@transcription_options
@diarization_options
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@json_option
@workspace_option
def transcribe(recording, ws, as_json, quiet, **kw):
    """Transcribe one recording again (new model or options); speaker names are kept.

    RECORDING is a recording id (or unique prefix) of this workspace, or a file/URL.

    \b
    Examples:
      confindex transcribe youtube-u2SCITorY2A --language fr --initial-prompt "Jean-Loup Chrétien"
      confindex transcribe ./panel.mp4 --batch-size 8
    """
    from .. import transcript as store
    from ..errors import NotFoundError

    options = build_options(kw, force=True)
    console = stderr_console()
    with ConsoleReporter(console, quiet=quiet or as_json) as reporter:
        try:
            store.resolve_recording(ws, recording)
            outcome = retranscribe(ws, recording, options, reporter)
        except NotFoundError:
            outcome = process(ws, recording, options, reporter=reporter)
    if as_json:
        print_json(outcome.to_dict())
    if outcome.status == "failed":
        raise ConfindexError(outcome.error or "transcription failed")
    if not as_json and not quiet:
        console.print(f"{outcome.recording_id}: {outcome.turns} turns")
