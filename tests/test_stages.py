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

from confindex.run.fetch import local_media
from confindex.run.job import FetchOptions, Transcriber
from confindex.speech.decoder import FAKE_ENV
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
