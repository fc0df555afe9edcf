"""Turn building and speaker assignment: pure functions, no model."""

from confindex.speech.turns import (
    assign_speakers,
    build_turns,
    complete_mapping,
    join_words,
    relabel_by_first_appearance,
    words_of,
)
from confindex.store.transcript import Segment, SpeakerSegment, Word


def w(start: float, end: float, text: str, speaker: str | None = None) -> Word:
    return Word(start, end, text, 1.0, speaker)


def test_words_of_keeps_time_order_and_falls_back_to_segment_text():
    segs = [
        Segment(1, 5.0, 6.0, "later", [w(5.0, 6.0, "later")]),
        Segment(0, 0.0, 2.0, "no word timings", []),
    ]
    out = words_of(segs)
    assert [x.text for x in out] == ["no word timings", "later"]


def test_assign_speakers_by_largest_overlap():
    words = [w(0.0, 1.0, "a"), w(1.8, 2.6, "b"), w(5.0, 5.5, "c")]
    segs = [SpeakerSegment(0.0, 2.0, "X"), SpeakerSegment(2.0, 4.0, "Y")]
    out = assign_speakers(words, segs)
    # "b" overlaps X by 0.2 s and Y by 0.6 s; "c" overlaps nothing: nearest segment is Y.
    assert [x.speaker for x in out] == ["X", "Y", "Y"]
    assert words[0].speaker is None  # inputs are not mutated


def test_assign_speakers_without_diarization_gives_none():
    assert assign_speakers([w(0, 1, "a", "X")], [])[0].speaker is None


def test_relabel_by_first_appearance():
    words = [w(0, 1, "a", "S3"), w(1, 2, "b", "S1"), w(2, 3, "c", "S3")]
    out, mapping = relabel_by_first_appearance(words)
    assert [x.speaker for x in out] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_00"]
    assert mapping == {"S3": "SPEAKER_00", "S1": "SPEAKER_01"}


def test_speakers_without_words_get_labels_of_their_own():
    # diarization found SPEAKER_00..02; SPEAKER_01 said no word Whisper heard
    words = [w(0, 1, "a", "SPEAKER_02"), w(1, 2, "b", "SPEAKER_00")]
    _, mapping = relabel_by_first_appearance(words)
    full = complete_mapping(mapping, ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02"])
    assert full == {
        "SPEAKER_02": "SPEAKER_00",
        "SPEAKER_00": "SPEAKER_01",
        "SPEAKER_01": "SPEAKER_02",
    }
    assert len(set(full.values())) == 3  # no speaker passes for another


def test_turns_split_on_speaker_change_and_long_pause():
    words = [
        w(0.0, 0.5, "Hello", "A"),
        w(0.6, 1.0, "there.", "A"),
        w(1.2, 1.6, "Hi.", "B"),
        w(4.0, 4.5, "Again", "B"),  # 2.4 s pause: a new turn, same speaker
    ]
    turns = build_turns(words, "en")
    assert [(t.speaker, t.text) for t in turns] == [
        ("A", "Hello there."),
        ("B", "Hi."),
        ("B", "Again"),
    ]
    assert (turns[0].start, turns[0].end) == (0.0, 1.0)
    assert [t.id for t in turns] == [0, 1, 2]
    assert all(t.language == "en" for t in turns)


def test_pause_of_exactly_two_seconds_does_not_split():
    turns = build_turns([w(0, 1, "a"), w(3.0, 3.5, "b")], None)
    assert len(turns) == 1


def test_long_monologue_splits_at_a_sentence_end_after_60_s():
    words = []
    t = 0.0
    for i in range(100):  # 100 s of speech, a sentence end every 10 words (5 s)
        words.append(w(t, t + 0.4, f"w{i}." if i % 10 == 9 else f"w{i}", "A"))
        t += 1.0
    turns = build_turns(words, "en")
    assert len(turns) == 2
    assert turns[0].words[-1].text.endswith(".")
    assert 55.0 <= turns[0].end - turns[0].start <= 70.0  # ~60 s, cut at a sentence end


def test_monologue_without_sentence_ends_is_capped():
    words = [w(float(i), i + 0.5, "word", "A") for i in range(200)]
    turns = build_turns(words, "en")
    assert all(t.end - t.start <= 90.0 for t in turns)
    assert sum(len(t.words) for t in turns) == 200


def test_turn_language_from_classifier_with_fallback():
    words = [w(0, 1, "Bonjour", "A"), w(1.1, 2, "Hi", "B")]
    turns = build_turns(words, "en", language_of=lambda text: "fr" if text == "Bonjour" else None)
    assert [t.language for t in turns] == ["fr", "en"]


def test_join_words():
    assert join_words([w(0, 1, " Hello"), w(1, 2, "world. ")]) == "Hello world."


def test_language_by_overlap_picks_the_dominant_segment_language():
    from confindex.speech.turns import language_by_overlap
    from confindex.store.transcript import Turn

    segs = [Segment(0, 0.0, 4.0, "a", language="fr"), Segment(1, 4.0, 5.0, "b", language="en")]
    assert language_by_overlap(Turn(0, 0.5, 4.5, "A", "x", "en"), segs) == "fr"
    assert language_by_overlap(Turn(1, 9.0, 10.0, "A", "x", "en"), segs) == "en"  # no overlap


def test_names_follow_voices_when_labels_are_renumbered():
    from confindex.speech.turns import carry_names
    from confindex.store.transcript import Turn

    old = [Turn(0, 0, 10, "SPEAKER_00", "a"), Turn(1, 10, 20, "SPEAKER_01", "b")]
    # Re-diarized: the second voice now speaks first in label order.
    new = [Turn(0, 0, 9.5, "SPEAKER_01", "a"), Turn(1, 9.5, 20, "SPEAKER_00", "b")]
    names = {"SPEAKER_01": "Maya Brooks"}
    assert carry_names(old, new, names) == {"SPEAKER_00": "Maya Brooks"}
    assert carry_names(old, [Turn(0, 0, 20, None, "x")], names) == {}
