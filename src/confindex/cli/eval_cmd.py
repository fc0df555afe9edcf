"""`confindex eval asr|diarization|search`: measure the pipeline against your own references."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import click

from confindex.cli.common import json_option, print_json, stderr_console, workspace_option
from confindex.cli.fetch_cmd import build_options, transcription_options
from confindex.errors import ConfindexError, InputError
from confindex.sanitize import rich


def _console():
    from confindex.cli.output import console

    return console()


def _table(title: str, rows: list[tuple[str, str]]):
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left", box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for k, v in rows:
        table.add_row(k, v)
    return table


def _read_text(path: Path) -> str:
    from confindex.store.workspace import check_file

    check_file(path)  # a FIFO or a device would be read for ever
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path.name} is not UTF-8 text") from None


@click.group("eval")
def eval_group() -> None:
    """Measure transcription, diarization and search against references.

    \b
    Examples:
      confindex eval asr talk.flac talk.ref.txt
      confindex eval diarization samples/panel.ogg samples/panel.rttm
      confindex eval search queries.json
    """


@eval_group.command("asr")
@click.argument("audio", type=click.Path(path_type=Path))
@click.argument("reference", type=click.Path(path_type=Path), metavar="REF.txt")
@transcription_options
@click.option(
    "--normaliser",
    "normaliser_name",
    type=click.Choice(["auto", "whisper-english", "whisper-basic", "none"]),
    default="auto",
    show_default=True,
    help="Text normalisation before scoring; auto = whisper-english for English, "
    "whisper-basic otherwise.",
)
@click.option("--show-text", is_flag=True, help="Also print the normalised reference and output.")
@json_option
def eval_asr(audio, reference, normaliser_name, show_text, as_json, **kw) -> None:
    """Transcribe AUDIO and print its word and character error rates against REF.txt.

    REF.txt is the plain-text transcript of the whole file. Takes the same model and decoding
    options as `confindex fetch`.

    \b
    Example:
      confindex eval asr ../shared/data/en/jfk.flac ../shared/data/en/jfk.ref.txt
      confindex eval asr talk.wav talk.txt --language fr --model ./whisper-small --json
    """
    from confindex.evaluation.evaluate import evaluate_asr
    from confindex.speech.decoder import load_model

    ref_text = _read_text(reference)
    opts = build_options(kw)
    loaded = load_model(opts.model, opts.device, opts.compute_type, opts.cpu_threads)
    with stderr_console().status(f"transcribing {rich(audio.name)}…"):
        ev = evaluate_asr(audio, ref_text, loaded, opts.asr, normaliser_name)
    if as_json:
        print_json(ev.as_dict())
        return
    r = ev.rates
    rows = [
        ("WER", f"{r.wer:.3f}  ({r.substitutions} sub, {r.deletions} del, {r.insertions} ins "
                f"/ {r.ref_words} words)"),
        ("CER", f"{r.cer:.3f}"),
        ("normaliser", r.normaliser),
        ("language", str(ev.language)),
        ("model", f"{ev.model} on {ev.device} ({ev.compute_type})"),
        ("audio", f"{ev.duration:.1f} s in {ev.seconds:.1f} s ({ev.speed:.1f}× realtime)"),
    ]  # fmt: skip
    if show_text:
        rows += [("reference", r.reference), ("output", r.hypothesis)]
    _console().print(_table(f"ASR: {audio.name}", rows))


@eval_group.command("diarization")
@click.argument("audio", type=click.Path(path_type=Path))
@click.argument("reference", type=click.Path(path_type=Path), metavar="REF.rttm")
@click.option("--collar", type=click.FloatRange(min=0), default=0.25, show_default=True,
              help="Seconds around each reference boundary left out of scoring.")  # fmt: skip
@click.option("--num-speakers", type=click.IntRange(min=1), default=None)
@click.option("--min-speakers", type=click.IntRange(min=1), default=None)
@click.option("--max-speakers", type=click.IntRange(min=1), default=None)
@click.option("--threshold", type=click.FloatRange(0, 2), default=None,
              help="Clustering threshold (cosine distance); default: the diarizer's.")  # fmt: skip
@json_option
def eval_diarization(
    audio, reference, collar, num_speakers, min_speakers, max_speakers, threshold, as_json
) -> None:
    """Diarize AUDIO and print its diarization error rate (DER) against REF.rttm.

    \b
    Example:
      confindex eval diarization samples/panel.ogg samples/panel.rttm
      confindex eval diarization ../shared/data/diar/pyannote_sample.wav \\
          ../shared/data/diar/pyannote_sample.rttm --num-speakers 2
    """
    missing = [
        m
        for m in ("speech.diarize", "evaluation.der")
        if importlib.util.find_spec(f"confindex.{m}") is None
    ]
    if missing:
        raise ConfindexError(
            f"diarization is not available in this build (confindex.{missing[0]} is missing)"
        )
    from confindex.evaluation.evaluate import evaluate_diarization
    from confindex.speech.diarize import DiarizeOptions

    kwargs: dict = dict(
        num_speakers=num_speakers, min_speakers=min_speakers, max_speakers=max_speakers
    )
    if threshold is not None:
        kwargs["threshold"] = threshold
    from confindex.store.workspace import check_file

    check_file(reference)
    with stderr_console().status(f"diarizing {rich(audio.name)}…"):
        ev = evaluate_diarization(audio, reference, DiarizeOptions(**kwargs), collar=collar)
    if as_json:
        print_json(ev.as_dict())
        return
    tot = ev.total or 1.0
    rows = [
        ("DER", f"{ev.der:.3f}  (collar {ev.collar:g} s)"),
        ("missed", f"{ev.missed:.2f} s ({ev.missed / tot:.1%})"),
        ("false alarm", f"{ev.false_alarm:.2f} s ({ev.false_alarm / tot:.1%})"),
        ("confusion", f"{ev.confusion:.2f} s ({ev.confusion / tot:.1%})"),
        (
            "overlap DER",
            f"{ev.overlap_der:.3f}  (over {ev.overlap_total:.2f} s of overlapped speech)",
        ),
        ("speakers", f"{ev.hyp_speakers} found, {ev.ref_speakers} in the reference"),
        ("mapping", ", ".join(f"{h}→{r}" for h, r in ev.mapping.items()) or "-"),
        ("time", f"{ev.seconds:.1f} s to diarize"),
    ]
    _console().print(_table(f"Diarization: {audio.name}", rows))


@eval_group.command("speakers")
@click.argument("enroll_audio", type=click.Path(path_type=Path))
@click.argument("enroll_rttm", type=click.Path(path_type=Path), metavar="ENROLL.rttm")
@click.argument("test_audio", type=click.Path(path_type=Path))
@click.argument("test_rttm", type=click.Path(path_type=Path), metavar="TEST.rttm")
@json_option
def eval_speakers(enroll_audio, enroll_rttm, test_audio, test_rttm, as_json) -> None:
    """Enroll the reference speakers of one recording, name them in another: precision and
    recall of the names the voice library gives.

    Each speaker diarization finds in ENROLL_AUDIO is enrolled under the ENROLL.rttm speaker it
    overlaps most; in TEST_AUDIO a name is right when it is the TEST.rttm speaker the diarized
    speaker overlaps most. Reference labels must name the same person in both files.

    \b
    Example:
      cd ../shared/data/diar
      confindex eval speakers ami_dev00.wav ami_dev00.rttm ami_dev01.wav ami_dev01.rttm
    """
    from confindex.evaluation.evaluate import evaluate_speakers
    from confindex.store.workspace import check_file

    for p in (enroll_audio, enroll_rttm, test_audio, test_rttm):
        check_file(p)
    with stderr_console().status(
        f"diarizing {rich(enroll_audio.name)} and {rich(test_audio.name)}…"
    ):
        ev = evaluate_speakers(enroll_audio, enroll_rttm, test_audio, test_rttm)
    if as_json:
        print_json(ev.as_dict())
        return
    rows = [
        ("precision", f"{ev.precision:.3f}  ({ev.correct} right of {ev.named} named)"),
        ("recall", f"{ev.recall:.3f}  ({ev.correct} of {ev.recognisable} enrolled people)"),
        ("enrolled", ", ".join(rich(n) for n in ev.enrolled) or "-"),
    ]
    for label, info in ev.speakers.items():
        score = f" ({info['score']:.2f})" if info.get("score") is not None else ""
        rows.append(
            (
                label,
                f"named {rich(info['name'] or '-')}{score}, truth {rich(info['truth'] or '-')}",
            )
        )
    _console().print(_table(f"Speaker names: {test_audio.name}", rows))


@eval_group.command("search")
@click.argument("refs", type=click.Path(path_type=Path), metavar="REFS.json")
@click.option("--k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="Score the top K hits.")  # fmt: skip
@click.option("--tolerance", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Also require a mention within SECONDS of the expected time.")  # fmt: skip
@click.option("--timing", is_flag=True,
              help="Recall within 2 s (or --tolerance) over every mention.")  # fmt: skip
@click.option("--words", "words_path", type=click.Path(path_type=Path), metavar="WORDS.json",
              help="Word-timed reference [{text, start}]: entries without a time expect every "
                   "moment it says the query (implies --timing).")  # fmt: skip
@click.option("--lang", default=None, help="Language of the --words reference (stems).")
@click.option("--semantic", is_flag=True,
              help="Score `search --semantic` (hybrid, any language): the time of a hit is "
                   "its passage's first word.")  # fmt: skip
@workspace_option
@json_option
def eval_search(refs, k, tolerance, timing, words_path, lang, semantic, ws, as_json) -> None:
    """Run the queries in REFS.json against the workspace index: recall@K and time errors.

    REFS.json is a list of {"query": ..., "recording": ID|URL|prefix, "time": "0:26" | 26.0}.
    Every mention of a hit counts: the time error is that of the closest mention.

    \b
    Example (after `confindex fetch samples/panel.ogg`):
      echo '[{"query": "handshake in space", "recording": "panel", "time": 26}]' > q.json
      confindex eval search q.json
      confindex eval search q.json --timing --json     # recall within 2 s, mean/max error
      confindex eval search names.json --words talk.words.json --lang fr
      confindex eval search cross-language.json --semantic --k 5 --json
    """
    from confindex.evaluation.evaluate import evaluate_search, read_search_refs, read_word_timings
    from confindex.timefmt import hms

    words = read_word_timings(words_path) if words_path else None
    timing = timing or words is not None
    if timing:
        tolerance = 2.0 if tolerance is None else tolerance
        k = max(k, 100)  # every mention in the recording, not only the first page
    search_fn = None
    if semantic:
        from confindex.search.fusion import cited_passages

        search_fn = cited_passages
    ev = evaluate_search(
        ws, read_search_refs(refs, words, lang), k=k, tolerance=tolerance, search_fn=search_fn
    )
    if as_json:
        mode = "timing" if timing else "rank"
        print_json({"mode": mode, "semantic": semantic, **ev.as_dict()})
        return
    from rich.table import Table

    table = Table(title=f"Search: {refs.name}", title_justify="left")
    for col in ("query", "recording", "expected", "rank", "hit", "error s"):
        table.add_column(col, justify="right" if col in ("rank", "error s") else "left")
    for o in ev.outcomes:
        table.add_row(
            o.query,
            o.recording,
            hms(o.time),
            str(o.rank) if o.rank else "-",
            hms(o.hit_time) if o.hit_time is not None else "-",
            f"{o.time_error:.1f}" if o.time_error is not None else "-",
        )
    console = _console()
    console.print(table)
    mean, worst = ev.mean_time_error, ev.max_time_error
    n = f"({len(ev.found)}/{len(ev.outcomes)})"
    line = (
        f"recall within {tolerance:g} s {ev.recall:.2f} {n}"
        if timing
        else (f"recall@{k} {ev.recall:.2f} {n}, MRR {ev.mrr:.2f}")
    )
    if mean is not None and worst is not None:
        line += f"; time error mean {mean:.2f} s, max {worst:.2f} s"
    console.print(line)
