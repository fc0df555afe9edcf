"""A scripted stand-in for the speech engine, for tests that do not measure recognition.

`FakeDecoder` answers the `Decoder` protocol (decoder.py) from a JSON script of timed words
instead of a model: where speech is, the language of a stretch and the words of a unit all
come from the script, so the rest of the pipeline (speech units, turns, quality flags,
publish, index, search, citations) runs on real audio in milliseconds. It lives in the package,
not in tests/, because a CLI started as a subprocess (or a Dask worker) must find it too:
`CONFINDEX_FAKE_DECODER=script.json confindex fetch FILE` makes `decoder.load_model` return it.

The script:

    {"language": "en",                       # default language (optional, "en")
     "words": [[0.0, 0.52, "And"],           # start, end (s, the recording's clock), text
               {"start": 2.76, "end": 3.74, "text": "ask",
                "language": "en", "probability": 0.9}]}

Words are decoded where their middle lies inside a decoded unit; a segment ends at a word
ending in . ? or !. Nothing is recognised: the audio is only measured.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confindex import __version__
from confindex.errors import ModelError
from confindex.store.transcript import Engine, Segment, Word

if TYPE_CHECKING:
    import numpy as np

    from confindex.speech.units import Unit

# decoder.py's VadSettings and DecodeSettings are typed Any here: decoder.py imports this
# module (load_model), and an import back would be a cycle.
Probs = dict[str, float]

SENTENCE_END = (".", "?", "!")


@dataclass(frozen=True)
class ScriptWord:
    start: float
    end: float
    text: str
    language: str
    probability: float = 0.9

    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2


class FakeDecoder:
    """The `Decoder` of a script (see the module docstring)."""

    name = "fake"
    device = "cpu"
    compute_type = "none"
    multilingual = True

    def __init__(self, words: Sequence[ScriptWord], language: str = "en", source: str = "") -> None:
        self.words = sorted(words, key=lambda w: (w.start, w.end))
        self.language = language
        self.source = source  # the script's path, for provenance
        self.sha256: str | None = None

    @classmethod
    def from_file(cls, path: Path) -> FakeDecoder:
        try:
            raw = path.read_bytes()
            script = json.loads(raw)
            language = str(script.get("language") or "en")
            words = [_word(w, language) for w in script["words"]]
        except OSError as exc:
            raise ModelError(f"cannot read the fake decoder's script {path}: {exc}") from None
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise ModelError(f"the fake decoder's script {path} is not valid: {exc}") from None
        fake = cls(words, language, str(path))
        fake.sha256 = hashlib.sha256(raw).hexdigest()
        return fake

    def languages(self) -> list[str]:
        return sorted({self.language} | {w.language for w in self.words})

    def describe(self) -> Engine:
        return Engine(self.name, __version__, Path(self.source).name or None, self.sha256)

    def speech(self, audio: np.ndarray, vad: Any) -> list[tuple[float, float]]:
        """The script's words joined across pauses shorter than the VAD's silence, padded as
        the VAD pads, cut into pieces of at most `vad.max_seconds`."""
        from confindex.speech.audio import SAMPLE_RATE

        total = len(audio) / SAMPLE_RATE
        pad, silence = vad.pad_ms / 1000, vad.min_silence_ms / 1000
        regions: list[list[float]] = []
        for w in self.words:
            if w.start >= total:
                break
            if regions and w.start - regions[-1][1] < silence + 2 * pad:
                regions[-1][1] = max(regions[-1][1], w.end)
            else:
                regions.append([w.start, w.end])
        out: list[tuple[float, float]] = []
        for a, b in regions:
            a, b = max(0.0, a - pad), min(total, b + pad)
            step = vad.max_seconds if math.isfinite(vad.max_seconds) else b - a
            while b - a > step:
                out.append((round(a, 3), round(a + step, 3)))
                a += step
            out.append((round(a, 3), round(b, 3)))
        return out

    def detect(self, audio: np.ndarray, spans: Sequence[tuple[float, float]]) -> list[Probs]:
        """Each stretch's languages by the seconds of scripted words in it (the default
        language where it holds none)."""
        out: list[Probs] = []
        for a, b in spans:
            seconds: dict[str, float] = {}
            for w in self.words:
                overlap = min(b, w.end) - max(a, w.start)
                if overlap > 0:
                    seconds[w.language] = seconds.get(w.language, 0.0) + overlap
            total = sum(seconds.values())
            out.append(
                {k: v / total for k, v in seconds.items()} if total else {self.language: 1.0}
            )
        return out

    def decode(
        self, audio: np.ndarray, chunks: Sequence[Sequence[Unit]], settings: Any
    ) -> list[Segment]:
        out: list[Segment] = []
        for chunk in chunks:
            for unit in chunk:
                mine = [w for w in self.words if unit.start <= w.middle <= unit.end]
                for sentence in _sentences(mine):
                    out.append(
                        Segment(
                            id=len(out),
                            start=sentence[0].start,
                            end=sentence[-1].end,
                            text=" ".join(w.text for w in sentence),
                            words=[Word(w.start, w.end, w.text, w.probability) for w in sentence],
                            avg_logprob=-0.2,
                            no_speech_prob=0.01,
                        )
                    )
        return out


def _word(item: Any, language: str) -> ScriptWord:
    if isinstance(item, dict):
        return ScriptWord(
            float(item["start"]),
            float(item["end"]),
            str(item["text"]),
            str(item.get("language") or language),
            float(item.get("probability", 0.9)),
        )
    start, end, text = item
    return ScriptWord(float(start), float(end), str(text), language)


def _sentences(words: Sequence[ScriptWord]) -> list[list[ScriptWord]]:
    out: list[list[ScriptWord]] = []
    current: list[ScriptWord] = []
    for w in words:
        current.append(w)
        if w.text.endswith(SENTENCE_END):
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out
