"""Quality flags (issue 14): the pure checks on decoder output, then real audio built to fail
(babble between real speech, a long silence before it) and clean real speech that must not be
flagged."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from builtaudio import babble as built_babble
from builtaudio import tones
from conftest import shared_file

from confindex.formats import export
from confindex.speech import quality
from confindex.speech.asr import AsrOptions
from confindex.speech.quality import Signals
from confindex.speech.turns import build_turns, words_of
from confindex.store.transcript import (
    Flag,
    Provenance,
    Recording,
    Segment,
    Transcript,
    Word,
)


def seg(
    i: int,
    start: float,
    text: str,
    probs: list[float] | float = 0.9,
    *,
    lang: str = "fr",
    ns: float = 0.1,
    lp: float = -0.3,
    step: float = 0.4,
) -> Segment:
    toks = text.split()
    ps = probs if isinstance(probs, list) else [probs] * len(toks)
    words = [Word(start + k * step, start + (k + 1) * step - 0.05, tok, p)
             for k, (tok, p) in enumerate(zip(toks, ps, strict=True))]  # fmt: skip
    return Segment(i, start, start + len(toks) * step, text, words, lp, ns, lang)


JFK = (
    "And so, my fellow Americans, ask not what your country can do for you, ask what you can do "
    "for your country."
)


# --------------------------------------------------------------------------------- loops
def test_a_phrase_repeated_back_to_back_across_segments_is_one_loop():
    # What Whisper base wrote over babble with beam 1 and its guards off (bench/quality.py).
    unit = "et le consulat il devient conservateur de l'élection"
    segs = [seg(0, 0.0, "sous le consulat il devient conservateur des eaux et forêts")]
    segs += [seg(i, 5.0 * i, unit, 0.8) for i in range(1, 5)]
    flags = quality.assess(segs)
    loops = [f for f in flags if f.kind == "loop"]
    assert len(loops) == 1
    f = loops[0]
    assert (f.unit, f.repeats, f.segments) == (unit, 4, [1, 2, 3, 4])
    assert f.start == 5.0 and f.score == 0.75
    assert "repeated 4× back to back" in f.reason
    # Confident words (p=0.8): no low-confidence flag; loops need no low probability.
    assert not [f for f in flags if f.kind == "lowconf"]


def test_one_word_needs_four_repeats_and_a_phrase_three():
    assert not quality.find_loops([seg(0, 0, "non non non c'est faux")])
    assert quality.find_loops([seg(0, 0, "merci merci merci merci")])[0].repeats == 4
    assert not quality.find_loops([seg(0, 0, "très très bien et très très bien")])
    three = quality.find_loops([seg(0, 0, "au revoir au revoir au revoir")])
    assert three[0].unit == "au revoir" and three[0].repeats == 3
    assert not quality.find_loops([seg(0, 0, JFK, lang="en")])


def test_text_that_compresses_like_a_loop_is_flagged_with_its_ratio():
    text = "Merci, " * 30
    assert quality.compression_ratio(text) > 2.4
    s = Segment(0, 0.0, 30.0, text, [], -0.2, 0.1, "fr")  # no word timings
    (f,) = quality.find_loops([s])
    assert f.reason.startswith("text compresses like a loop (ratio ") and f.score > 0.5
    assert f.unit is None  # no words to collapse: exports keep the text as it is
    assert quality.compression_ratio(JFK) < 2.4


# ----------------------------------------------------------------------------- non-speech
def test_text_outside_the_vad_speech_regions_is_nonspeech():
    speech = [(0.0, 11.0), (40.0, 51.0)]
    segs = [seg(0, 1.0, "and so my fellow americans", lang="en"),
            seg(1, 28.0, "You", 0.1, lang="en", ns=0.95, lp=-0.7),
            seg(2, 41.0, "ask not what your country", lang="en")]  # fmt: skip
    flags = quality.assess(segs, Signals(speech=speech))
    ns = [f for f in flags if f.kind == "nonspeech"]
    assert len(ns) == 1 and ns[0].segments == [1]
    assert ns[0].reason.startswith("0% of it is speech to the VAD")
    assert ns[0].score == 1.0


def test_whisper_no_speech_and_known_silence_phrases():
    s = seg(0, 0.0, "Sous-titres réalisés par la communauté d'Amara.org", 0.6, ns=0.7, lp=-1.2)
    (f,) = quality.find_nonspeech([s], None)
    assert "no-speech probability 0.70" in f.reason and "invents over silence" in f.reason
    assert f.score == 0.9
    # The same words said for real, in speech, with a confident decoder: a mild flag only.
    s2 = seg(0, 0.0, "Merci d'avoir regardé", 0.9, ns=0.1)
    (f2,) = quality.find_nonspeech([s2], [(0.0, 5.0)])
    assert f2.score == 0.5
    assert not quality.find_nonspeech([seg(0, 0.0, "bonjour à tous")], [(0.0, 5.0)])


# --------------------------------------------------------------------------- low confidence
def test_low_confidence_is_a_span_not_single_red_words():
    probs = [0.9] * 5 + [0.2, 0.1, 0.3, 0.15, 0.2] + [0.9] * 5
    text = " ".join(f"w{i}" for i in range(15))
    (f,) = quality.find_lowconf([seg(0, 0.0, text, probs)])
    assert f.start == pytest.approx(2.0) and f.end == pytest.approx(3.95)  # words 5..9
    assert f.reason == "5 words with mean probability 0.19" and f.score == 0.81
    one_red = [0.9] * 7 + [0.05] + [0.9] * 7
    assert not quality.find_lowconf([seg(0, 0.0, text, one_red)])


# ------------------------------------------------------------------------------- language
def test_text_in_another_language_than_decoded():
    s = seg(0, 0.0, "An der Ringe Jesuch geht der Ruffeose die nicht wird", 0.4, lang="fr")
    flags = quality.find_language([s], Signals(language_of=lambda text: ("de", 0.97)))
    assert flags[0].reason == "decoded as fr, the text reads as de (p=0.97)"
    doubt = quality.find_language([s], Signals(language="nl", language_probability=0.17))
    assert doubt[0].reason == "language detected as nl with probability 0.17"
    assert doubt[0].score == 0.83
    assert not quality.find_language([s], Signals(language="fr", language_probability=0.99))


# ------------------------------------------------------------------ passages, turns, exports
def test_flags_of_one_kind_close_together_are_one_passage():
    speech = [(100.0, 200.0)]
    segs = [seg(0, 0.0, "You"), seg(1, 0.6, "Thank you")]
    (f,) = quality.assess(segs, Signals(speech=speech))
    assert f.kind == "nonspeech" and f.segments == [0, 1]


def loop_transcript() -> Transcript:
    unit = "merci beaucoup"
    segs = [seg(0, 0.0, "bonjour à tous"), seg(1, 1.2, " ".join([unit] * 5), 0.9),
            seg(2, 5.2, "au revoir")]  # fmt: skip
    words = words_of(segs)
    for w in words:
        w.speaker = "SPEAKER_00"
    rec = Recording("rec-1", "Talk", "/talk.wav", kind="file")
    t = Transcript(rec, Provenance("test"), "fr", 7.0, segments=segs,
                   turns=build_turns(words, "fr"))  # fmt: skip
    t.flags = quality.assess(segs)
    return t


def test_exports_collapse_a_loop_with_a_marker_and_the_json_keeps_every_word():
    t = loop_transcript()
    (f,) = t.flags
    assert f.kind == "loop" and f.repeats == 5
    txt = export.render(t, "txt")
    assert "bonjour à tous merci beaucoup [… ×5 — repetition loop, see the JSON] au revoir" in txt
    assert txt.count("merci") == 1
    srt = export.render(t, "srt")
    assert srt.count("merci") == 1 and "×5" in srt
    data = json.loads(export.render(t, "json"))
    assert data["turns"][0]["text"].count("merci beaucoup") == 5
    assert data["flags"][0]["kind"] == "loop"
    assert quality.turn_flags(t) == {0: t.flags}


def test_flags_survive_a_json_round_trip_and_old_transcripts_have_none():
    t = loop_transcript()
    back = Transcript.from_json(t.to_json())
    assert back.flags == t.flags and isinstance(back.flags[0], Flag)
    old = json.loads(t.to_json())
    del old["flags"]
    old["schema_version"] = 1  # as confindex wrote transcripts before flags
    migrated = Transcript.from_dict(old)
    assert migrated.flags == [] and migrated.schema_version == 3
    assert json.loads(migrated.to_json())["schema_version"] == 3
    assert old["schema_version"] == 1 and "flags" not in old  # the input is not modified


def test_a_version_1_transcript_in_a_workspace_loads_searches_exports_and_reviews(tmp_path):
    """A transcript written before schema 2 (no flags) still works everywhere: index, search
    (also with flag: queries), exports (ELAN among them), review, and a rename rewrites it
    as version 2."""
    from conftest import run

    from confindex.store.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    ws.ensure()
    v1 = json.loads(loop_transcript().to_json())
    del v1["flags"]
    v1["schema_version"] = 1
    ws.transcript_path("rec-1").write_text(json.dumps(v1), encoding="utf-8")
    assert run("index", ws=ws).exit_code == 0
    assert hits(ws, "revoir") == {("rec-1", 0)}
    assert hits(ws, "revoir -flag:any") == {("rec-1", 0)} and hits(ws, "revoir flag:any") == set()
    txt = run("export", "rec-1", "--format", "txt", ws=ws)
    assert txt.exit_code == 0 and txt.stdout.count("merci beaucoup") == 5  # no flags: as said
    eaf = run("export", "rec-1", "--format", "eaf", ws=ws)
    assert eaf.exit_code == 0 and "au revoir" in eaf.stdout
    r = run("review", "rec-1", ws=ws)
    assert r.exit_code == 0 and r.stdout.strip() == "Talk: nothing flagged."
    assert run("speakers", "rec-1", "rename", "SPEAKER_00", "Diane", ws=ws).exit_code == 0
    saved = json.loads(ws.transcript_path("rec-1").read_text(encoding="utf-8"))
    assert saved["schema_version"] == 3 and saved["flags"] == []
    assert saved["speakers"] == {"SPEAKER_00": "Diane"}


# ------------------------------------------------------------------ real audio (the model)
SR = 16000


def babble(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like noise with no words, built from the real JFK and picovoice clips."""
    from confindex.speech import audio

    jfk = audio.decode(shared_file("en/jfk.flac"))
    fr = audio.decode(shared_file("fr/picovoice_test_fr.wav"))
    return built_babble(jfk, fr, seconds, seed)


def write_wav(path, samples: np.ndarray):
    import wave

    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())
    return path


def transcribe(path, **asr):
    from confindex.run.fetch import local_media
    from confindex.run.pipeline import FetchOptions, Transcriber
    from confindex.speech.asr import AsrOptions

    return Transcriber(FetchOptions(asr=AsrOptions(**asr), diarize=False)).transcribe(
        local_media(path)
    )


GUARDS_OFF = {"temperature": 0.0, "compression_ratio_threshold": None,
              "log_prob_threshold": None, "no_speech_threshold": None}  # fmt: skip


@pytest.fixture(scope="module")
def talk_wav(tmp_path_factory):
    """JFK, 25 s of babble (speech-like, no words), JFK again."""
    from confindex.speech import audio

    jfk = audio.decode(shared_file("en/jfk.flac"))
    return write_wav(tmp_path_factory.mktemp("babble") / "talk.wav",
                     np.concatenate([jfk, babble(25), jfk]))  # fmt: skip


@pytest.fixture(scope="module")
def babble_talk(talk_wav):
    """`talk.wav` fetched with the defaults by the real CLI (batched decoding, diarization);
    the workspace and transcript."""
    from conftest import run

    from confindex.store.transcript import resolve_recording
    from confindex.store.workspace import Workspace

    ws = Workspace(talk_wav.parent / "ws")
    r = run("fetch", str(talk_wav), "--quiet", ws=ws)
    assert r.exit_code == 0, r.output
    return ws, resolve_recording(ws, "talk"), talk_wav


@pytest.fixture(scope="module")
def babble_raw(talk_wav):
    """The same talk with the defaults but loops left as faster-whisper's batched pipeline
    writes them: `compression_ratio_threshold=None`, faster-whisper's own switch for its
    fallback, also turns off the second reading of looping speech. Published to a workspace."""
    from confindex.run.fetch import local_media
    from confindex.run.pipeline import FetchOptions, Transcriber
    from confindex.store.publish import publish
    from confindex.store.workspace import Workspace

    ws = Workspace(talk_wav.parent / "ws-raw")
    asr = AsrOptions(decode_options={"compression_ratio_threshold": None})
    t = Transcriber(FetchOptions(asr=asr)).transcribe(local_media(talk_wav))
    publish(ws, t)
    return ws, t


def _longest_loop(t: Transcript) -> int:
    return max((f.repeats for f in t.flags if f.kind == "loop"), default=0)


@pytest.mark.slow
def test_babble_decoded_as_the_batched_pipeline_does_loops_and_the_loop_is_flagged(babble_raw):
    """Left to faster-whisper's batched pipeline (no temperature fallback), Whisper writes one
    confident phrase over and over into the babble."""
    ws, t = babble_raw
    loops = [f for f in t.flags if f.kind == "loop"]
    assert loops, [(s.start, s.text) for s in t.segments]
    f = max(loops, key=lambda x: x.repeats)
    assert f.repeats >= 8 and "back to back" in f.reason and f.score >= 0.75
    assert f.start > 11.0 and f.end < 36.5  # over the babble, not the real speech around it
    # JFK's real sentences, before and after: no loop or non-speech flag.
    real = [x for x in t.flags if x.kind in ("loop", "nonspeech") and (x.end < 11 or x.start > 36)]
    assert not real, real
    # Exports show the loop once, with its marker; the JSON keeps every word.
    txt = export.render(t, "txt")
    assert f"×{f.repeats} — repetition loop" in txt
    for unit in {x.unit for x in loops}:  # each loop once (the babble may loop on two phrases)
        assert unit and txt.count(unit) == sum(x.unit == unit for x in loops)
    assert export.render(t, "json").count(f.unit) >= f.repeats
    # Published, the flag selects exactly the looping turns, and -flag:any the others.
    same = [x for x in loops if x.unit == f.unit]  # the loops whose phrase has `word`
    looping = {(t.id, x.id) for x in t.turns if quality.flags_of_turn(x, same)}
    clean = {(t.id, x.id) for x in t.turns if not quality.flags_of_turn(x, t.flags)}
    word = quality._norm(f.unit).split()[-1]
    assert hits(ws, f"{word} flag:loop") == looping
    assert hits(ws, "country -flag:any") == {h for h in clean if h in hits(ws, "country")}
    assert hits(ws, "country -flag:any")  # JFK's sentences are found, unflagged


@pytest.mark.slow
def test_with_the_defaults_looping_speech_is_read_again_and_loops_far_less(babble_talk, babble_raw):
    """Speech whose text compresses like a loop is decoded again with repeated 6-token runs
    forbidden (asr.LOOP_NGRAM): over the babble the longest loop drops from ≥ 8 repeats to ≤ 4
    and the words written there to under half; JFK's sentences stay word for word, unflagged.
    What is left over the babble is still flagged."""
    _, t, _ = babble_talk
    _, raw = babble_raw
    assert t.provenance.options["loops_redecoded"] >= 1
    assert raw.provenance.options["loops_redecoded"] == 0
    assert _longest_loop(raw) >= 8 and _longest_loop(t) <= 4, t.flags

    def babble_words(x: Transcript) -> int:
        return sum(1 for s in x.segments for w in s.words if 11.5 < w.start < 35.5)

    assert babble_words(t) < babble_words(raw) / 2, (babble_words(t), babble_words(raw))

    def jfk(x: Transcript) -> list[str]:
        return [" ".join(w.text for s in x.segments for w in s.words if a < w.start < b)
                for a, b in ((0, 11.5), (35.5, 47.0))]  # fmt: skip

    assert jfk(t) == jfk(raw) and all("ask not what your country" in j for j in jfk(t))
    real = [x for x in t.flags if x.kind in ("loop", "nonspeech") and (x.end < 11 or x.start > 36)]
    assert not real, real
    assert [f for f in t.flags if 11.0 < f.start < 36.0]  # the babble's text is still in doubt


def test_the_readme_review_example_is_what_review_prints(tmp_path):
    """README's `confindex review talk` block, and the text export line it quotes, are what the
    real CLI prints for the talk (`talk_wav`) as the pipeline transcribed it with the defaults.
    That transcript is kept in tests/data: what Whisper writes over babble turns on the CPU's
    maths (an AMD EPYC read 5 passages to check where an Intel Xeon reads 3), so a live run
    cannot be the README's on every machine; the live runs' checks are the tests above."""
    from conftest import REPO, run

    from confindex.store.workspace import Workspace

    kept = json.loads((REPO / "tests" / "data" / "review_talk.json").read_text(encoding="utf-8"))
    assert kept["provenance"]["options"]["batch_size"] == 8  # the defaults, as `fetch` ran
    assert kept["provenance"]["options"]["loops_redecoded"] == 2  # this version's decoding
    ws = Workspace(tmp_path / "ws")
    ws.ensure()
    ws.transcript_path(kept["recording"]["id"]).write_text(json.dumps(kept), encoding="utf-8")
    assert run("index", ws=ws).exit_code == 0
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("$ confindex review talk\n", 1)[1].split("```", 1)[0]
    assert run("review", "talk", ws=ws).stdout == block
    loop_line = readme.split("its text export reads `", 1)[1].split("`", 1)[0]
    txt = run("export", "talk", "--format", "txt", ws=ws).stdout
    assert " ".join(loop_line.split()) in " ".join(txt.split())


@pytest.mark.slow
def test_babble_at_beam_1_without_guards_is_flagged_low_confidence(tmp_path):
    """Real French speech, babble, the speech again; beam 1, conditioned on the previous text,
    faster-whisper's guards off: the babble becomes the previous sentence again, in words of
    very low probability."""
    from confindex.speech import audio

    fr = audio.decode(shared_file("fr/picovoice_test_fr.wav"))
    path = write_wav(tmp_path / "babble.wav", np.concatenate([fr, babble(25), fr]))
    t = transcribe(path, language="fr", beam_size=1, vad=False, batch_size=0,
                   condition_on_previous_text=True, decode_options=GUARDS_OFF)  # fmt: skip
    low = [f for f in t.flags if f.kind == "lowconf"]
    assert low, [(s.start, s.text, [w.probability for w in s.words]) for s in t.segments]
    # Each flag lies in the babble (the real sentence is 0–6.7 s, again from 31.7 s); Whisper's
    # first invented word may start a moment before the sentence's last one ends.
    assert all(f.end > 6.7 and f.start < 31.7 for f in low), low
    # The first segment is the real sentence: its words, ending with its last one. (Where that
    # word ends varies with the CPU: 6.7 s on an AMD EPYC, 7.0 s on an Intel Xeon.)
    sentence = t.segments[0]
    assert "consulat" in sentence.text and sentence.words[-1].text.startswith("génér")
    assert sentence.end <= 6.7 + 0.5 and len(sentence.words) <= 13  # the reference has 13
    # No flag is about the real sentence (its last word's time may touch the first flag's).
    assert not [f for f in t.flags if sentence.id in f.segments], t.flags
    assert "mean probability" in low[0].reason and low[0].score > 0.65
    assert not [f for f in t.flags if f.end < 6.7]  # the real sentence before: clean


@pytest.mark.slow
def test_text_over_a_long_silence_is_flagged_nonspeech(tmp_path):
    """35 s of silence, then JFK; with no VAD and faster-whisper's silence guards off, Whisper
    writes "You" into the silence."""
    from confindex.speech import audio

    jfk = audio.decode(shared_file("en/jfk.flac"))
    path = write_wav(tmp_path / "silence.wav", np.concatenate([np.zeros(35 * SR), jfk]))
    t = transcribe(path, language="en", vad=False, batch_size=0, decode_options={
        "no_speech_threshold": None, "log_prob_threshold": None})  # fmt: skip
    ns = [f for f in t.flags if f.kind == "nonspeech"]
    assert ns, [(s.start, s.text, s.no_speech_prob) for s in t.segments]
    # Each flag is text Whisper wrote into the silence (its last "You" may end a moment into
    # JFK's first word), never JFK's sentence.
    assert all(f.start < 35.0 for f in ns)
    jfk_ids = {s.id for s in t.segments if "country" in s.text}
    assert jfk_ids and not [f for f in t.flags if jfk_ids & set(f.segments)], t.flags
    assert "speech to either VAD" in ns[0].reason
    assert not [f for f in t.flags if f.start > 35.0 and f.kind in ("loop", "nonspeech")]


@pytest.mark.slow
def test_text_over_music_like_tones_is_flagged_loop_and_nonspeech(tmp_path):
    """JFK, 45 s of music-like tones, JFK again, decoded without VAD and with faster-whisper's
    guards off: Whisper writes "…" over and over (swallowing JFK's first sentence) and a
    counting loop into the music. Every word it wrote over the music is in a flagged passage;
    JFK's last sentence is not. (With 20 s of tones, as this test had first, the int8 kernels
    of one CPU wrote "…" loops there and those of another — AMD EPYC, CTranslate2 4.8.5 —
    wrote nothing over the music at all; with 45 s it invents text too. Loops "back to
    back" are checked on babble, below.)"""
    from confindex.speech import audio

    jfk = audio.decode(shared_file("en/jfk.flac"))  # 11.0 s
    path = write_wav(tmp_path / "tones.wav", np.concatenate([jfk, tones(45), jfk]))
    t = transcribe(path, vad=False, batch_size=0, decode_options=GUARDS_OFF)
    music = [w for x in t.turns for w in x.words if 11.5 <= (w.start + w.end) / 2 <= 55.5]
    assert music, [(s.start, s.text) for s in t.segments]
    assert not [w for w in music if not any(quality._inside(w, f) for f in t.flags)], t.flags
    loops = [f for f in t.flags if f.kind == "loop"]
    assert any("compresses like a loop" in f.reason and f.end > 11.0 for f in loops), loops
    ns = [f for f in t.flags if f.kind == "nonspeech" and f.start >= 11.0 and f.end <= 61.0]
    assert ns and "speech to either VAD" in ns[0].reason and ns[0].score >= 0.9
    # JFK's last sentence (from 63 s) comes out right and unflagged.
    last = [s for s in t.segments if s.start >= 62.0]
    assert "ask what you can do for your country" in " ".join(s.text for s in last).lower()
    assert not [f for f in t.flags if f.end > 62.0 and f.kind in ("loop", "nonspeech")]


@pytest.mark.slow
def test_speech_decoded_in_the_wrong_language_is_flagged_language():
    """JFK decoded as German, as a researcher's wrong `--language de` makes it: Whisper writes
    the English words anyway, and the flag says which language the text reads as. (This test
    built its wrong decode from babble and a wrong `--languages ar,en`, but that decode turns on
    the CPU's maths: half English on an AMD EPYC, all Arabic script on an Intel Xeon, where no
    text classifier can tell, so nothing was flagged.)"""
    t = transcribe(shared_file("en/jfk.flac"), language="de")
    assert t.language == "de" and "country" in t.text
    lang = [f for f in t.flags if f.kind == "language"]
    assert lang, [(s.start, s.text) for s in t.segments]
    assert all("decoded as de, the text reads as en" in f.reason for f in lang)
    assert lang[0].start < 1.0  # from JFK's first words


@pytest.mark.slow
@pytest.mark.parametrize("rel", ["en/jfk.flac", "fr/radiofrance_smartphone.mp3"])
def test_clean_real_speech_gets_no_loop_or_nonspeech_flag(rel):
    t = transcribe(shared_file(rel))
    assert t.turns
    bad = [f for f in t.flags if f.kind in ("loop", "nonspeech")]
    assert not bad, bad


# ------------------------------------------------------------- search, review (the CLI)
def flagged_workspace(tmp_path):
    """Two recordings published into a workspace: turns with a loop, low confidence, text over
    silence, and clean turns, all saying "projet"."""
    from confindex.run.pipeline import publish
    from confindex.store.workspace import Workspace

    ws = Workspace(tmp_path / "ws")

    def make(rid: str, parts: list[tuple[str, str, list[float] | float]], speech):
        segs, start = [], 0.0
        for i, (who, text, probs) in enumerate(parts):
            s = seg(i, start, text, probs)
            for w in s.words:
                w.speaker = who
            segs.append(s)
            start = s.end + 3.0  # a pause: every part is its own turn
        words = words_of(segs)
        rec = Recording(rid, f"Talk {rid}", f"/talks/{rid}.wav", kind="file")
        t = Transcript(rec, Provenance("test"), "fr", start, segments=segs,
                       turns=build_turns(words, "fr"))  # fmt: skip
        t.flags = quality.assess(segs, Signals(speech=speech(segs)))
        publish(ws, t)
        return t

    def all_speech(segs):
        return [(0.0, segs[-1].end)]

    a = make("rec-a", [
        ("S1", "le projet avance bien", 0.9),
        ("S2", "le projet merci merci merci merci merci", 0.9),
        ("S1", "le projet xq zt vb mm du budget", [0.9, 0.9, 0.1, 0.2, 0.1, 0.15, 0.9, 0.9]),
        ("S2", "le projet est fini", 0.9),
    ], all_speech)  # fmt: skip

    def gap_speech(segs):  # the second part is said over silence
        return [(segs[0].start, segs[0].end), (segs[2].start, segs[2].end)]

    b = make("rec-b", [
        ("S1", "un autre projet", 0.9),
        ("S1", "merci projet", 0.9),
        ("S2", "projet suivant", 0.9),
    ], gap_speech)  # fmt: skip
    return ws, [a, b]


def hits(ws, query: str) -> set[tuple[str, int]]:
    from conftest import run

    r = run("search", query, "--json", "--limit", "100", ws=ws)
    assert r.exit_code == 0, r.output
    return {(h["recording_id"], h["turn_id"]) for h in json.loads(r.stdout)["hits"]}


def test_flag_queries_select_exactly_the_flagged_hits(tmp_path):
    ws, ts = flagged_workspace(tmp_path)
    flagged: dict[str, set[tuple[str, int]]] = {k: set() for k in (*quality.KINDS, "any")}
    every = set()
    for t in ts:
        for turn in t.turns:
            every.add((t.id, turn.id))
            for f in quality.flags_of_turn(turn, t.flags):
                flagged[f.kind].add((t.id, turn.id))
                flagged["any"].add((t.id, turn.id))
    # What the workspace holds: one loop, one low-confidence span, one text over silence.
    assert len(flagged["loop"]) == 1 and len(flagged["lowconf"]) == 1
    assert len(flagged["nonspeech"]) == 1 and len(every) == 7
    assert hits(ws, "projet") == every
    for kind in ("loop", "lowconf", "nonspeech", "any"):
        assert hits(ws, f"projet flag:{kind}") == flagged[kind], kind
    assert hits(ws, "projet -flag:any") == every - flagged["any"]
    assert hits(ws, "projet NOT flag:loop") == every - flagged["loop"]


def test_hits_in_flagged_passages_carry_the_flag(tmp_path):
    from conftest import run

    ws, _ = flagged_workspace(tmp_path)
    r = run("search", "merci", "--json", ws=ws)
    loops = [h for h in json.loads(r.stdout)["hits"] if h["flags"]]
    kinds = sorted(f["kind"] for h in loops for f in h["flags"])
    assert kinds == ["loop", "nonspeech"]
    loop = next(f for h in loops for f in h["flags"] if f["kind"] == "loop")
    assert loop["reason"] == "“merci” repeated 5× back to back" and loop["score"] == 0.8
    text = run("search", "merci", ws=ws).stdout
    assert "⚑ loop 0.80 [00:00:05]: “merci” repeated 5× back to back" in text
    assert "⚑ nonspeech" in text
    out = run("search", "merci", "--format", "csv", ws=ws).stdout
    rows = {(r["recording_id"], r["flags"]) for r in csv.DictReader(io.StringIO(out))}
    assert rows == {("rec-a", "loop"), ("rec-b", "nonspeech")}
    bad = run("search", "projet flag:maybe", ws=ws)
    assert (
        bad.exit_code == 2
        and "flag: takes loop, nonspeech, lowconf, language, undecoded, missed or any"
        in (bad.stderr)
    )


def test_review_lists_the_passages_to_check(tmp_path):
    from conftest import run

    ws, _ = flagged_workspace(tmp_path)
    r = run("review", "rec-a", ws=ws)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "Talk rec-a: 2 passages to check"
    assert "[00:00:05–00:00:07] loop 0.80 S2: “merci” repeated 5× back to back" in r.stdout
    assert "“merci merci merci merci merci”" in r.stdout
    assert "lowconf 0.86 S1: 4 words with mean probability 0.14" in r.stdout
    assert "file:///talks/rec-a.wav#t=5" in r.stdout
    data = json.loads(run("review", "rec-a", "--kind", "loop", "--json", ws=ws).stdout)
    assert [p["kind"] for p in data["passages"]] == ["loop"] and data["flags"] == 2
    clean = run("review", "rec-b", "--kind", "loop", ws=ws)
    assert clean.stdout.strip() == "Talk rec-b: nothing flagged with these filters."
    missing = run("review", "nope", ws=ws)
    assert missing.exit_code != 0 and "no recording 'nope'" in missing.stderr


def test_a_passage_spoken_half_by_each_of_two_speakers_goes_to_the_first_in_every_run():
    """A loop over two turns, two words each: the passage is said by who speaks first, whatever
    the string hashes (a max over a set once gave SPEAKER_00 or SPEAKER_02 by run, and README's
    review example changed with it). Eight interpreters, eight hash seeds."""
    import os
    import subprocess
    import sys

    code = """
from confindex.speech import quality
from confindex.store.transcript import Flag, Provenance, Recording, Transcript, Turn, Word
w = lambda a, text: Word(a, a + 0.4, text)
turns = [Turn(0, 23.0, 23.9, "SPEAKER_02", "and go", "en", [w(23.0, "and"), w(23.5, "go")]),
         Turn(1, 24.0, 24.9, "SPEAKER_00", "on and", "en", [w(24.0, "on"), w(24.5, "and")])]
t = Transcript(Recording("r", "T", "/t.wav", kind="file"), Provenance("test"), "en", 30.0,
               turns=turns, flags=[Flag("lowconf", 23.0, 25.0, 0.8, "4 words")])
print(quality.review(t)[0].speaker)
"""
    said = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env=os.environ | {"PYTHONHASHSEED": str(seed)}).stdout.strip()
        for seed in range(8)
    }  # fmt: skip
    assert said == {"SPEAKER_02"}


def test_archive_review_is_the_python_api_of_review(tmp_path):
    from confindex import Archive
    from confindex.errors import InputError

    ws, _ = flagged_workspace(tmp_path)
    archive = Archive(ws.root)
    rows = archive.review("rec-a")
    assert [(p.kind, p.speaker, p.start) for p in rows] == [
        ("loop", "S2", pytest.approx(5.4)),
        ("lowconf", "S1", pytest.approx(11.2)),
    ]
    assert rows[0].text == "merci merci merci merci merci"
    assert [p.kind for p in archive.review("rec-a", kinds=["lowconf"], min_score=0.5)] == [
        "lowconf"
    ]
    assert archive.review("rec-a", min_score=0.99) == []
    with pytest.raises(InputError, match=r"unknown flag kind\(s\) maybe"):
        archive.review("rec-a", kinds=["maybe"])
    with pytest.raises(InputError, match="min_score 2"):
        archive.review("rec-a", min_score=2)


def test_elan_export_has_a_flags_tier_valid_against_the_xsd(tmp_path):
    from pathlib import Path

    from lxml import etree
    from pympi import Elan

    t = loop_transcript()
    text = export.render(t, "eaf")
    xsd = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "data" / "EAFv3.0.xsd")))
    assert xsd.validate(etree.fromstring(text.encode())), xsd.error_log
    path = tmp_path / "t.eaf"
    path.write_text(text, encoding="utf-8")
    eaf = Elan.Eaf(str(path))
    ((a, b, value),) = eaf.get_annotation_data_for_tier("confindex quality flags")
    f = t.flags[0]
    assert (a, b) == (round(f.start * 1000), round(f.end * 1000))
    assert value == "loop (0.80): “merci beaucoup” repeated 5× back to back"
    # The speaker's tier reads the loop once, with the marker.
    ((_, _, said),) = eaf.get_annotation_data_for_tier("SPEAKER_00")
    assert said.count("merci beaucoup") == 1 and "×5" in said


def test_the_web_ui_shows_the_flag_on_hits(tmp_path):
    """`confindex serve` (the real server, loopback): a hit in a loop says so, escaped."""
    from servekit import start_server, stop_server

    ws, _ = flagged_workspace(tmp_path)
    server = start_server(ws)
    try:
        status, _h, body = server.request("/search?q=merci")
        page = body.decode()
        assert status == 200
        assert "⚑ loop 0.80 [00:00:05]: “merci” repeated 5× back to back" in page
        assert '<p class="flag" data-kind="nonspeech">' in page
        status, data = server.json("/api/search?q=merci")
        assert sorted(f["kind"] for h in data["hits"] for f in h["flags"]) == [
            "loop", "nonspeech"]  # fmt: skip
    finally:
        stop_server(server)
