"""A recording's steps: timed (fetch -v, provenance), run side by side with the same answer as
one after the other, and a forced language kept cheap (issue 33).

Real audio, real diarization (sherpa-onnx) and real Silero VAD throughout; the speech engine is
the scripted FakeDecoder in the fast tests and the real Whisper model in the `slow` ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import run, shared_file
from test_fake_pipeline import JFK  # the base model's words for jfk.flac, as a script

from confindex.run.fetch import local_media
from confindex.run.job import FetchOptions, Transcriber
from confindex.speech.decoder import FAKE_ENV
from confindex.store import transcript as transcript_store
from confindex.store.workspace import Workspace

FAKE = Path(__file__).parent / "data" / "pyannote_sample.fake.json"
# Steps every default fetch of a recording with speech goes through.
STEPS = {"hash", "audio", "model", "diarize", "vad", "evidence", "language", "decoding", "flags"}


def _what_it_says(t: Any) -> dict[str, Any]:
    """Words, times, turns, speakers, flags and voiceprints: all but how it was made."""
    d = t.to_dict()
    return {k: v for k, v in d.items() if k not in ("provenance", "schema_version")}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAKE_ENV, str(FAKE))


def test_fetch_verbose_and_provenance_show_each_steps_cpu_and_wall_seconds(tmp_path, fake):
    clip = shared_file("diar/pyannote_sample.wav")
    ws = Workspace(tmp_path / "ws")
    r = run("-v", "fetch", str(clip), "--json", "--no-index", ws=ws)
    assert r.exit_code == 0, r.output
    line = next(x for x in r.stderr.splitlines() if "CPU/wall s per step" in x)
    assert "diarize" in line and "decoding" in line and "flags" in line
    assert "publish" in r.stderr  # the one writer's step, logged after the transcript is saved
    rid = json.loads(r.stdout)["recordings"][0]["recording_id"]
    t = json.loads((ws.root / "transcripts" / f"{rid}.json").read_text(encoding="utf-8"))
    stages = t["provenance"]["options"]["stages"]
    assert set(stages) >= STEPS, stages
    assert all(v["cpu_s"] >= 0 and v["wall_s"] >= 0 for v in stages.values())
    # Diarization of 30 s of real speech is real work; it ran beside the VAD and model load.
    assert stages["diarize"]["wall_s"] > 0.2 and stages["diarize"].get("side") is True
    assert t["schema_version"] == 3  # an optional provenance key: no new schema version


def _transcribe(clip: Path, *, concurrent: bool, ahead: bool = False, **options: Any) -> Any:
    tr = Transcriber(FetchOptions(**options))
    tr.concurrent = concurrent
    media = local_media(clip)
    if ahead:  # as a bulk run's download thread does for the next recording
        tr.listen_ahead(media)
        assert str(media.path) in tr._ahead
    return tr.transcribe(media)


def test_steps_side_by_side_give_the_same_transcript_as_one_after_the_other(fake):
    clip = shared_file("diar/pyannote_sample.wav")
    sequential = _transcribe(clip, concurrent=False)
    side_by_side = _transcribe(clip, concurrent=True)
    ahead = _transcribe(clip, concurrent=True, ahead=True)
    assert len(sequential.turns) >= 5 and len({t.speaker for t in sequential.turns}) == 2
    assert _what_it_says(side_by_side) == _what_it_says(sequential)
    assert _what_it_says(ahead) == _what_it_says(sequential)
    assert sequential.provenance.options["stages"]["diarize"].get("side") is None
    assert side_by_side.provenance.options["stages"]["diarize"]["side"] is True


def _clips(tmp_path: Path) -> list[Path]:
    """Two recordings of real speech: the pyannote sample and its first 20 s."""
    import wave

    clip = shared_file("diar/pyannote_sample.wav")
    short = tmp_path / "sample20.wav"
    with wave.open(str(clip)) as src, wave.open(str(short), "wb") as dst:
        dst.setparams(src.getparams())
        dst.writeframes(src.readframes(20 * src.getframerate()))
    return [clip, short]


def test_a_bulk_run_listens_ahead_with_the_same_transcripts_and_the_ledger_free(
    tmp_path, fake, monkeypatch
):
    """`fetch` of two recordings: its download thread listens to each (decode, diarize, VAD)
    before the main thread transcribes it, with the same words and turns as a run without
    download thread, and holds no ledger lock meanwhile (another writer gets it within 1 s: the
    main thread's own writes last milliseconds)."""
    import sqlite3

    clips = _clips(tmp_path)
    listen_ahead = Transcriber.listen_ahead
    free: list[bool] = []

    def ledger_free(ws: Workspace) -> bool:
        c = sqlite3.connect(ws.ledger_path, timeout=1, isolation_level=None)
        try:
            c.execute("BEGIN IMMEDIATE")
            c.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            c.close()

    def watched(self: Transcriber, media: Any, ws: Any = None, reporter: Any = None) -> None:
        free.append(ledger_free(ws))
        listen_ahead(self, media, ws, reporter)
        free.append(ledger_free(ws))

    monkeypatch.setattr(Transcriber, "listen_ahead", watched)
    said = {}
    for workers in ("0", "1"):
        ws = Workspace(tmp_path / f"ws{workers}")
        args = ["fetch", *map(str, clips), "--json", "--no-index", "--download-workers", workers]
        r = run(*args, ws=ws)
        assert r.exit_code == 0, r.output
        ids = [rec["recording_id"] for rec in json.loads(r.stdout)["recordings"]]
        said[workers] = [_what_it_says(transcript_store.load(ws, rid)) for rid in ids]
    assert free == [True] * 4  # listened ahead to both recordings of the pipelined run only
    assert said["1"] == said["0"]
    assert all(len(t["turns"]) >= 3 for t in said["0"]), said["0"]


def test_what_was_heard_ahead_is_dropped_when_another_process_saves_it_first(
    tmp_path, fake, monkeypatch
):
    """Two runs on one workspace: a recording this run listened to ahead is saved by the other
    run before this one gets to it. This run skips it ("already transcribed") and lets go of
    what it heard (its samples), instead of holding it to the end of the run."""
    import shutil

    clips = _clips(tmp_path)
    other = Workspace(tmp_path / "other")
    r = run("fetch", *map(str, clips), "--json", "--no-index", "--no-diarize", ws=other)
    assert r.exit_code == 0, r.output
    listen_ahead = Transcriber.listen_ahead
    seen: list[Transcriber] = []

    def then_saved_elsewhere(self: Transcriber, media: Any, ws: Any = None, reporter: Any = None):
        listen_ahead(self, media, ws, reporter)
        seen.append(self)
        name = f"{media.recording.id}.json"  # the other process's transcript lands meanwhile
        shutil.copy(other.transcripts / name, ws.transcripts / name)

    monkeypatch.setattr(Transcriber, "listen_ahead", then_saved_elsewhere)
    ws = Workspace(tmp_path / "ws")
    r = run("fetch", *map(str, clips), "--json", "--no-index", ws=ws)
    assert r.exit_code == 0, r.output
    reasons = [rec.get("reason") for rec in json.loads(r.stdout)["recordings"]]
    assert reasons == ["already transcribed"] * 2, r.stdout
    assert seen and all(not tr._ahead for tr in seen)  # held both until the run ended before


@pytest.mark.slow
def test_real_model_side_by_side_gives_the_same_words_and_turns():
    clip = shared_file("diar/ami_dev00.wav")
    sequential = _transcribe(clip, concurrent=False)
    side_by_side = _transcribe(clip, concurrent=True)
    ahead = _transcribe(clip, concurrent=True, ahead=True)
    words = [w.text for t in sequential.turns for w in t.words]
    assert len(words) > 40 and len({t.speaker for t in sequential.turns}) >= 2
    assert _what_it_says(side_by_side) == _what_it_says(sequential)
    assert _what_it_says(ahead) == _what_it_says(sequential)


class Counting:
    """A decoder (real or fake) that records the stretches it is asked to judge and decode."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.detected: list[tuple[float, float]] = []
        self.decoded: list[tuple[float, float]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def detect(self, audio: Any, spans: Any) -> Any:
        self.detected += list(spans)
        return self.inner.detect(audio, spans)

    def decode(self, audio: Any, chunks: Any, settings: Any) -> Any:
        self.decoded += [(u.start, u.end) for chunk in chunks for u in chunk]
        return self.inner.decode(audio, chunks, settings)


class WrongLanguageLoops(Counting):
    """The FakeDecoder, counting what it is asked, whose English comes out as a loop when it
    is told to decode it as another language (what Whisper does with a wrong forced language)."""

    def decode(self, audio: Any, chunks: Any, settings: Any) -> Any:
        from confindex.store.transcript import Segment, Word

        segs = super().decode(audio, chunks, settings)
        if settings.language == "en":
            return segs
        looped = []
        for s in segs:
            words = [Word(s.start + i * 0.1, s.start + i * 0.1 + 0.1, "la la") for i in range(40)]
            looped.append(Segment(s.id, s.start, s.end, " ".join(w.text for w in words), words))
        return looped


def _jfk_decoder() -> WrongLanguageLoops:
    from confindex.speech.fake import FakeDecoder, ScriptWord

    return WrongLanguageLoops(FakeDecoder([ScriptWord(a, b, t, "en") for a, b, t in JFK]))


def test_a_forced_language_detects_nothing_and_decodes_a_wrong_language_stretch_once():
    from confindex.speech import asr
    from confindex.speech.audio import decode

    audio = decode(shared_file("en/jfk.flac"))
    forced = _jfk_decoder()
    r = asr.transcribe(forced, audio, asr.AsrOptions(language="fr"))
    units = asr.speech_units(asr.vad_chunks(audio, asr.AsrOptions(), forced), None)
    # Every unit decoded once: the loop is not decoded again, nor its stretch as lost speech.
    assert sorted(forced.decoded) == sorted((u.start, u.end) for u in units)
    # The only detection is of the looping stretches (never of every unit first).
    assert 0 < len(forced.detected) <= len(units)
    assert r.loops_redecoded == 0
    assert [e[2].split(" (")[0] for e in r.elsewhere] == ["heard as en"] * len(r.elsewhere)
    assert r.elsewhere and r.elsewhere[0][0] <= 1.0 and r.elsewhere[-1][1] >= 10.0
    flags = asr_flags(r)
    assert {f.kind for f in flags} >= {"language"}

    # The same decoder told the right language: no loop, no check, the script's words.
    right = _jfk_decoder()
    r = asr.transcribe(right, audio, asr.AsrOptions(language="en"))
    assert right.detected == [] and r.elsewhere == []
    assert [w.text for s in r.segments for w in s.words] == [t for _, _, t in JFK]


class LoopsUnlessRepeatsForbidden(WrongLanguageLoops):
    """Loops in any language unless the call forbids repeated runs, and records each call's
    decode options: what Whisper does with speech that a wrong forced language turns into a
    looping translation."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.options: list[dict[str, Any]] = []

    def decode(self, audio: Any, chunks: Any, settings: Any) -> Any:
        from confindex.speech.asr import LOOP_NGRAM

        self.options.append(dict(settings.options))
        if settings.options.get("no_repeat_ngram_size") == LOOP_NGRAM:
            return Counting.decode(self, audio, chunks, settings)
        return super().decode(audio, chunks, settings)


def test_a_forced_language_forbids_repeats_from_the_first_call_and_decodes_each_unit_once():
    """Under --language the first reading already forbids repeated 6-token runs (issue 33: a
    wrong-language loop ran to Whisper's 224 tokens and lost its chunk's tail): nothing loops,
    so nothing is judged or decoded again; the detected-language path reads as before."""
    from confindex.speech import asr
    from confindex.speech.audio import decode
    from confindex.speech.fake import FakeDecoder, ScriptWord

    audio = decode(shared_file("en/jfk.flac"))
    words = [ScriptWord(a, b, t, "en") for a, b, t in JFK]
    forced = LoopsUnlessRepeatsForbidden(FakeDecoder(words))
    r = asr.transcribe(forced, audio, asr.AsrOptions(language="fr"))
    units = asr.speech_units(asr.vad_chunks(audio, asr.AsrOptions(), forced), None)
    assert sorted(forced.decoded) == sorted((u.start, u.end) for u in units)
    assert forced.options and all(
        o["no_repeat_ngram_size"] == asr.LOOP_NGRAM for o in forced.options
    )
    assert forced.detected == [] and r.loops_redecoded == 0
    assert [w.text for s in r.segments for w in s.words] == [t for _, _, t in JFK]
    # The user's own setting stands.
    mine = LoopsUnlessRepeatsForbidden(FakeDecoder(words))
    opts = asr.AsrOptions(language="fr", decode_options={"no_repeat_ngram_size": 3})
    asr.transcribe(mine, audio, opts)
    assert mine.options[0]["no_repeat_ngram_size"] == 3
    # Detected languages: the first reading as before (repeats allowed), loops repaired.
    detected = LoopsUnlessRepeatsForbidden(FakeDecoder(words))
    asr.transcribe(detected, audio, asr.AsrOptions())
    assert "no_repeat_ngram_size" not in detected.options[0]


def asr_flags(result: Any) -> list[Any]:
    from confindex.speech import quality

    return quality.language_flags(result.elsewhere)


@pytest.mark.slow
def test_real_forced_french_on_mixed_speech_decodes_no_moment_more_than_three_times():
    """French, Russian and English read speech forced to French with the real model: the
    French is read as French; no moment goes through the decoder more than three times (at
    most: decoded, decoded alone as lost speech, its loop decoded again; was four: a looping
    unit repaired, then its lost part decoded and repaired again); only looping or lost
    stretches are judged by the language detector."""
    import numpy as np

    from confindex.speech import asr
    from confindex.speech.audio import SAMPLE_RATE, decode

    gap = np.zeros(SAMPLE_RATE, np.float32)
    clips = ["fr/picovoice_test_fr.wav", "ru/pisets_mono_sound_ru.wav", "en/jfk.flac"]
    audio = np.concatenate([x for c in clips for x in (decode(shared_file(c)), gap)])
    counting = Counting(asr.load_model())
    r = asr.transcribe(counting, audio, asr.AsrOptions(language="fr"))
    units = asr.speech_units(asr.vad_chunks(audio, asr.AsrOptions(), counting), None)
    for t in np.arange(0.0, len(audio) / SAMPLE_RATE, 0.25):
        assert sum(a <= t < b for a, b in counting.decoded) <= 3, (t, counting.decoded)
    assert len(counting.detected) < len(units)
    french = " ".join(s.text for s in r.segments if s.end <= 7.0).lower()
    assert "consulat" in french, french


def test_a_forced_language_judges_what_it_reads_unsure_and_decodes_nothing_again():
    """With repeats forbidden, speech in another language no longer loops under --language:
    it comes out as nonsense or a translation that Whisper is unsure of. Such units are
    judged (detection only) and flagged when heard as another language; sure ones are not
    judged at all."""
    from confindex.speech import asr
    from confindex.speech.audio import decode
    from confindex.speech.fake import FakeDecoder, ScriptWord

    audio = decode(shared_file("en/jfk.flac"))
    unsure = Counting(FakeDecoder([ScriptWord(a, b, t, "en", 0.3) for a, b, t in JFK]))
    r = asr.transcribe(unsure, audio, asr.AsrOptions(language="fr"))
    units = asr.speech_units(asr.vad_chunks(audio, asr.AsrOptions(), unsure), None)
    assert sorted(unsure.decoded) == sorted((u.start, u.end) for u in units)  # once each
    assert unsure.detected and r.loops_redecoded == 0
    assert r.elsewhere and all(e[2].startswith("heard as en") for e in r.elsewhere)
    assert "language" in {f.kind for f in asr_flags(r)}
    sure = Counting(FakeDecoder([ScriptWord(a, b, t, "en", 0.9) for a, b, t in JFK]))
    r = asr.transcribe(sure, audio, asr.AsrOptions(language="fr"))
    assert sure.detected == [] and r.elsewhere == []
