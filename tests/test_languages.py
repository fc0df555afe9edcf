"""Language planning for mixed-language recordings: the pure parts."""

from confindex.asr import language_shares, smooth_languages, speech_windows


def test_speech_windows_break_at_pauses_and_cap_length():
    chunks = [(0.0, 5.0), (5.1, 9.0), (9.6, 12.0), (12.1, 50.0)]
    windows = speech_windows(chunks, max_len=30.0, gap=0.3)
    # 5.0→5.1 is no pause; 9.0→9.6 is; the 38-s chunk is cut at 30 s.
    assert windows == [(0.0, 9.0), (9.6, 12.0), (12.1, 42.1), (42.1, 50.0)]
    assert all(b - a <= 30.0 for a, b in windows)


def test_unsure_windows_take_the_nearest_sure_language():
    detected = [(0, 5, "fr", 0.9), (6, 9, "la", 0.2), (10, 20, "en", 0.95), (40, 45, "en", 0.3)]
    assert smooth_languages(detected) == [
        (0, 5, "fr"),
        (6, 9, "fr"),
        (10, 20, "en"),
        (40, 45, "en"),
    ]


def test_rare_languages_fold_into_the_main_one():
    plan = [(0, 50, "en"), (50, 52, "de"), (52, 80, "fr")]
    assert language_shares(plan) == {"en": 52, "fr": 28}
    assert language_shares([]) == {}


def test_word_pieces_without_a_space_join_the_previous_word():
    from types import SimpleNamespace as W

    from confindex.asr import merge_word_pieces

    pieces = [
        W(word=" l", start=1.0, end=1.1, probability=0.9),
        W(word="'histoire", start=1.1, end=1.6, probability=0.8),
        W(word=" de", start=1.6, end=1.7, probability=0.99),
        W(word=" Jean", start=2.0, end=2.2, probability=0.9),
        W(word="-Loup.", start=2.2, end=2.5, probability=0.7),
    ]
    out = merge_word_pieces(pieces)
    assert [(w.text, w.start, w.end, w.probability) for w in out] == [
        ("l'histoire", 1.0, 1.6, 0.8),
        ("de", 1.6, 1.7, 0.99),
        ("Jean-Loup.", 2.0, 2.5, 0.7),
    ]


def test_turn_language_classifier_is_used_only_when_sure():
    from confindex.language import turn_language_fn

    language_of = turn_language_fn("en")
    assert language_of("Bonjour à tous, et bienvenue au débat de ce soir.") == "fr"
    assert language_of("Космическая дипломатия изменила весь мир.") == "ru"
    assert language_of("Merci.") == "en"  # too short to judge: Whisper's language stays
    # A Whisper code the classifier does not know is kept as the fallback.
    assert turn_language_fn("haw")("Hi.") == "haw"


def test_long_audio_is_cut_in_pieces_at_quiet_moments():
    import itertools

    import numpy as np

    from confindex.asr import SAMPLE_RATE, piece_bounds

    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, SAMPLE_RATE * 1500).astype(np.float32)  # 25 min of "speech"
    audio[SAMPLE_RATE * 585 : SAMPLE_RATE * 586] = 0.0  # a silence 15 s before the 600-s limit
    bounds = piece_bounds(audio)
    assert bounds[0][0] == 0.0 and bounds[-1][1] == 1500.0
    assert all(b - a <= 600.0 for a, b in bounds)
    assert all(x[1] == y[0] for x, y in itertools.pairwise(bounds))  # contiguous
    assert 585.0 <= bounds[0][1] <= 586.0  # cut inside the silence
    assert piece_bounds(audio[: SAMPLE_RATE * 60]) == [(0.0, 60.0)]
