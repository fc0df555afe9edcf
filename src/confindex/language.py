"""Which language a turn is in, from its text (for mixed-language panels).

Whisper names one language per recording (or per 30-s window with --multilingual); the index
stems each turn by its own language, so a French answer in an English panel is found by French
queries. py3langid classifies a sentence in ~0.1 ms; we trust it only when it is confident.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

# Languages we let the classifier choose among: those with stemmers in the index, plus the
# recording's own language. A small set keeps short sentences from drifting to rare languages.
CANDIDATES = ("en", "fr", "ru", "de", "es", "it", "pt", "nl", "sv", "da", "no", "fi", "hu", "ro")
MIN_WORDS = 4
MIN_CONFIDENCE = 0.9


@cache
def _identifier(languages: tuple[str, ...]):
    import py3langid.langid as langid

    ident = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)
    # Whisper knows codes py3langid does not (haw, yue…): leave those out.
    ident.set_languages([lang for lang in languages if lang in set(ident.nb_classes)])
    return ident


def turn_language_fn(default: str | None) -> Callable[[str], str | None]:
    """A function text → language: the classifier's answer when sure, else `default`."""
    languages = tuple(sorted(set(CANDIDATES) | ({default} if default else set())))

    def language_of(text: str) -> str | None:
        if len(text.split()) < MIN_WORDS:
            return default
        lang, confidence = _identifier(languages).classify(text)
        return lang if confidence >= MIN_CONFIDENCE else default

    return language_of
