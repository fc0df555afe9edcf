"""Word pieces and the text-based turn language classifier: the pure parts."""


def test_word_pieces_without_a_space_join_the_previous_word():
    from types import SimpleNamespace as W

    from confindex.speech.decoder import merge_word_pieces

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
    from confindex.speech.language import turn_language_fn

    language_of = turn_language_fn("en")
    assert language_of("Bonjour à tous, et bienvenue au débat de ce soir.") == "fr"
    assert language_of("Космическая дипломатия изменила весь мир.") == "ru"
    assert language_of("Merci.") == "en"  # too short to judge: Whisper's language stays
    # A Whisper code the classifier does not know is kept as the fallback.
    assert turn_language_fn("haw")("Hi.") == "haw"
