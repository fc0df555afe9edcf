"""The transcript: plain dataclasses, one JSON file per recording, schema-versioned.

`transcripts/<recording id>.json` is the single source of truth of the archive; exports and the
search index are derived from it and can always be rebuilt.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from confindex.errors import ConfindexError, NotFoundError
from confindex.store.workspace import Workspace, atomic_write_text

log = logging.getLogger(__name__)

# 2: quality flags (issue 14; `flags`, quality.py); voiceprints, automatic names, rejected
# names and opt-outs of the voice library (issue 13; voices.py). Version 1 files are migrated
# on load (`_migrate`) and written back as 2 when next saved. Others add their optional fields
# to 2.
# 3: engine-neutral provenance (issue 26): `provenance.engine` {name, version, model, sha256,
# runtime} replaces faster_whisper_version, ctranslate2_version, model and model_sha256;
# version 2 files are migrated on load (`_migrate`).
SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
# A JSON object with no nested object/array and no brace or bracket inside its values.
_FLAT_OBJECT = re.compile(r"\{\n(?:[ ]*\"[^\"\n]*\": [^\n{}\[\]]*\n)+[ ]*\}")
# A JSON array of numbers only (a voiceprint): one line, not 192.
_NUMBER_ARRAY = re.compile(r"\[\n(?:[ ]*-?[0-9][0-9.eE+-]*,?\n)+[ ]*\]")


@dataclass
class Word:
    start: float
    end: float
    text: str
    probability: float = 1.0
    speaker: str | None = None
    # Edits (issue 27): a user typed this word (`verified`); its times were spread over the
    # edited span because no media was there to align it to (`estimated`). Written only
    # when true, so that transcripts without edits keep their size.
    verified: bool = False
    estimated: bool = False


@dataclass
class Segment:
    """A decoder segment as faster-whisper returned it."""

    id: int
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    language: str | None = None


@dataclass
class Flag:
    """A passage that is likely wrong (see quality.py): kind, where, how sure, and why."""

    kind: str  # loop | nonspeech | lowconf | language
    start: float
    end: float
    score: float  # 0..1: how likely the passage is wrong
    reason: str
    segments: list[int] = field(default_factory=list)  # ids of the segments it covers
    unit: str | None = None  # loop: the repeated phrase
    repeats: int = 0  # loop: how many times it repeats


@dataclass
class Turn:
    """What one speaker said without interruption (or a pause-separated block)."""

    id: int
    start: float
    end: float
    speaker: str | None
    text: str
    language: str | None = None
    words: list[Word] = field(default_factory=list)
    # Other speakers heard at the same time as this one for a while (issue 29, optional in
    # version 3: absent in older files, which load with []). Each word keeps one speaker.
    overlap: list[str] = field(default_factory=list)


@dataclass
class SpeakerSegment:
    """A diarization result: `speaker` talks from `start` to `end` (seconds)."""

    start: float
    end: float
    speaker: str


@dataclass
class Voiceprint:
    """A speaker's voice: unit-length CAM++ embedding (192 floats) and the seconds of clean
    speech it was averaged over."""

    vector: list[float]
    seconds: float


@dataclass
class AutoName:
    """A display name the voice library gave (not a user): its cosine similarity and the runner-up
    margin, until a user confirms (it becomes a plain name) or rejects it."""

    name: str
    score: float
    margin: float | None = None


@dataclass
class Chapter:
    """A part of the recording with one topic (issue 32): the source's own chapter (`kind`
    "source", as yt-dlp gave it) or one computed from the passages' meaning ("computed", see
    search/topics.py). `start` is a sentence or turn start; `end` the next chapter's start."""

    start: float
    end: float
    title: str
    kind: str = "computed"  # computed | source
    keywords: list[str] = field(default_factory=list)
    speakers: list[str] = field(default_factory=list)  # labels heard, most speech first
    languages: list[str] = field(default_factory=list)  # most speech first
    synopsis: str = ""  # its first sentences


@dataclass
class Recording:
    """What the recording is and where it came from (yt-dlp metadata or a local file)."""

    id: str
    title: str
    source: str  # what the user passed: a URL or an absolute path
    kind: str = "url"  # "youtube" | "url" | "file"
    webpage_url: str | None = None
    extractor: str | None = None
    extractor_id: str | None = None
    channel: str | None = None
    uploader: str | None = None
    upload_date: str | None = None  # ISO YYYY-MM-DD
    duration: float | None = None
    description: str | None = None
    chapters: list[dict[str, Any]] = field(default_factory=list)
    media_path: str | None = None  # relative to the workspace when inside it
    media_sha256: str | None = None

    def source_path(self) -> Path | None:
        """The local file this was fetched from (a path or a file:// URL), else None."""
        if self.kind == "file" or (self.source and "://" not in self.source):
            return Path(self.source).expanduser()
        if self.source.startswith("file://"):
            from urllib.parse import unquote, urlsplit

            return Path(unquote(urlsplit(self.source).path))
        return None

    def media_candidates(self, root: Path) -> list[Path]:
        """Where the media may be, best first: the downloaded copy (`media_path`, relative to
        the workspace `root` when inside it), else the local file it was fetched from. One
        rule for the web player and the QDA exports' media links (which differed: `~` and
        file:// sources were resolved by one and not the other)."""
        out = []
        if self.media_path:
            p = Path(self.media_path).expanduser()
            out.append(p if p.is_absolute() else root / p)
        if (source := self.source_path()) is not None:
            out.append(source)
        return out


@dataclass
class Engine:
    """The speech engine that decoded a transcript (speech/decoder.py `describe`)."""

    name: str  # "faster-whisper"
    version: str | None = None
    model: str | None = None  # the model's name, or its directory
    sha256: str | None = None  # of the model's weights (model.bin)
    runtime: str | None = None  # what runs the model, e.g. "ctranslate2 4.6.0"


@dataclass
class Provenance:
    """How the transcript was made, so that any figure can be reproduced."""

    confindex_version: str
    engine: Engine | None = None
    yt_dlp_version: str | None = None
    device: str | None = None
    compute_type: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    diarization: dict[str, Any] | None = None
    created_at: str | None = None
    transcribe_seconds: float | None = None
    diarize_seconds: float | None = None


@dataclass
class Change:
    """One entry of a recording's change log (`confindex history`): when, what kind
    (edit, merge, assign, rename, meta, transcribe), a one-line diff, and where."""

    at: str  # ISO 8601 UTC
    kind: str
    summary: str
    start: float | None = None
    end: float | None = None


# Metadata a user set (`confindex meta`): kept across re-transcription and re-fetch.
META_KEYS = ("title", "date", "channel", "url", "doi", "authors")


@dataclass
class Transcript:
    recording: Recording
    provenance: Provenance
    language: str | None
    duration: float
    segments: list[Segment] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    speakers: dict[str, str] = field(default_factory=dict)  # label -> display name
    diarization: list[SpeakerSegment] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)  # quality flags (v2; none in v1 files)
    # label -> voiceprint (v2); computed at diarization, or from the media afterwards.
    voiceprints: dict[str, Voiceprint] = field(default_factory=dict)
    # label -> the automatic name in `speakers[label]`; absent: the name (if any) is a user's.
    auto_names: dict[str, AutoName] = field(default_factory=dict)
    # label -> names a user rejected for it: never suggested again for this recording.
    rejected_names: dict[str, list[str]] = field(default_factory=dict)
    # labels a user named with --no-enroll: their voices stay out of the library (and rebuilds).
    not_enrolled: list[str] = field(default_factory=list)
    # Issue 27: metadata a user set (META_KEYS; `authors` a list) and the change log.
    meta: dict[str, Any] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    # Chapters (issue 32; optional): the source's own, else computed at publish.
    chapters: list[Chapter] = field(default_factory=list)
    # What the computed chapters were made from (topics.fingerprint): publish recomputes them
    # only when the words or the turns changed.
    chapters_of: str | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def id(self) -> str:
        return self.recording.id

    def speaker_name(self, label: str | None) -> str | None:
        """The display name of a speaker label (the label itself until renamed)."""
        if label is None:
            return None
        return self.speakers.get(label) or label

    @property
    def text(self) -> str:
        return " ".join(t.text for t in self.turns)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for part in (*d["segments"], *d["turns"]):
            for w in part["words"]:
                for key in ("verified", "estimated"):
                    if not w.get(key):
                        w.pop(key, None)
        # schema_version first: a reader sees it before anything else.
        return {"schema_version": d.pop("schema_version"), **d}

    def to_json(self) -> str:
        """Indented JSON with each flat object (a word, a speaker segment) on one line.

        Safe because JSON strings never hold a raw newline: only layout whitespace is joined.
        """
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=1)
        text = _NUMBER_ARRAY.sub(lambda m: re.sub(r"\n *", " ", m.group(0)), text)
        return _FLAT_OBJECT.sub(lambda m: re.sub(r"\n *", " ", m.group(0)), text)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transcript:
        version = d.get("schema_version")
        if version not in READABLE_VERSIONS:
            raise ConfindexError(
                f"transcript schema version {version!r} is not supported "
                f"(this confindex reads versions {', '.join(map(str, READABLE_VERSIONS))})"
            )
        d = _migrate(d)

        def words(items: list[dict[str, Any]]) -> list[Word]:
            return [Word(**w) for w in items]

        t = cls(
            schema_version=SCHEMA_VERSION,
            recording=Recording(**d["recording"]),
            provenance=_provenance(d["provenance"]),
            language=d.get("language"),
            duration=d.get("duration", 0.0),
            segments=[
                Segment(**{**s, "words": words(s.get("words", []))}) for s in d.get("segments", [])
            ],
            turns=[Turn(**{**t, "words": words(t.get("words", []))}) for t in d.get("turns", [])],
            speakers=dict(d.get("speakers", {})),
            diarization=[SpeakerSegment(**s) for s in d.get("diarization", [])],
            flags=[Flag(**f) for f in d["flags"]],
            voiceprints={k: Voiceprint(**v) for k, v in d["voiceprints"].items()},
            auto_names={k: AutoName(**v) for k, v in d["auto_names"].items()},
            rejected_names={k: [str(n) for n in v] for k, v in d["rejected_names"].items()},
            not_enrolled=[str(x) for x in d["not_enrolled"]],
            meta={k: v for k, v in d["meta"].items() if k in META_KEYS},
            changes=[Change(**c) for c in d["changes"]],
            chapters=[Chapter(**c) for c in d["chapters"]],
            chapters_of=d.get("chapters_of"),
        )
        check_types(t)
        return t

    @classmethod
    def from_json(cls, text: str) -> Transcript:
        return cls.from_dict(json.loads(text))


_NONE = type(None)
_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "str | None": (str, _NONE),
    "float": (int, float),
    "float | None": (int, float, _NONE),
    "int": (int,),
    "int | None": (int, _NONE),
}
_TIMES = ("start", "end", "duration")


def _check_fields(obj: Any, where: str) -> None:
    for f in fields(obj):
        v = getattr(obj, f.name)
        ann = str(f.type)
        allowed = _TYPES.get(ann)
        if allowed is None:
            base = {"list": (list,), "dict": (dict,)}.get(ann.split("[")[0])
            if base is None:
                continue
            allowed = (*base, _NONE) if ann.endswith("| None") else base
        if not isinstance(v, allowed) or (isinstance(v, bool) and bool not in allowed):
            raise ValueError(f"{where}.{f.name} is {type(v).__name__}, not {ann}")
        if f.name in _TIMES and isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{where}.{f.name} is {v}")


def check_types(t: Transcript) -> None:
    """ValueError unless every field of `t` has its declared type, and times are finite: a
    title that was a number, a word that was a bool, a NaN time were read as a transcript and
    failed later (AttributeError, "cannot convert float NaN to integer": exit 70, HTTP 500)."""
    _check_fields(t.recording, "recording")
    _check_fields(t.provenance, "provenance")
    if not isinstance(t.language, (str, _NONE)) or not isinstance(t.duration, (int, float)):
        raise ValueError("language or duration has the wrong type")
    for name in ("segments", "turns", "diarization", "flags", "chapters"):
        for i, x in enumerate(getattr(t, name)):
            _check_fields(x, f"{name}[{i}]")
            for j, w in enumerate(getattr(x, "words", ())):
                if not (
                    isinstance(w.text, str)
                    and type(w.start) in (int, float)
                    and type(w.end) in (int, float)
                    and math.isfinite(w.start)
                    and math.isfinite(w.end)
                    and type(w.probability) in (int, float)
                    and isinstance(w.speaker, (str, _NONE))
                ):
                    raise ValueError(f"{name}[{i}].words[{j}] has a field of the wrong type")
    for k, v in t.speakers.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ValueError("speakers: names must be text")
    for i, c in enumerate(t.chapters):
        if not all(isinstance(x, str) for x in (*c.keywords, *c.speakers, *c.languages)):
            raise ValueError(f"chapters[{i}]: keywords, speakers and languages must be text")


def _provenance(d: dict[str, Any]) -> Provenance:
    engine = d.get("engine")
    return Provenance(**{**d, "engine": Engine(**engine) if engine is not None else None})


def _migrate(d: dict[str, Any]) -> dict[str, Any]:
    """A transcript dict of any readable version as version 3 (the input is not modified)."""
    d = dict(d)
    if d.get("schema_version") == 1:
        # 1 -> 2: no quality flags were computed (`confindex transcribe ID` computes them);
        # no voiceprints yet (`confindex speakers identify` computes them from the media when
        # it is still there); every existing name was given by a user.
        d["schema_version"] = 2
    if d.get("schema_version") == 2:
        # 2 -> 3: the faster-whisper fields of the provenance become its engine.
        d["provenance"] = _engine_provenance(d["provenance"])
        d["schema_version"] = 3
    d["flags"] = list(d.get("flags") or [])
    for key in ("voiceprints", "auto_names", "rejected_names"):
        d[key] = dict(d.get(key) or {})
    d["not_enrolled"] = list(d.get("not_enrolled") or [])
    # Issue 27 (optional in 2): no user metadata, no change log, no verified words.
    d["meta"] = dict(d.get("meta") or {})
    d["changes"] = list(d.get("changes") or [])
    # Turns' `overlap` (issue 29) is optional in version 3: files without it (every version 2
    # file, and version 3 files written before it) have no overlap recorded.
    d["turns"] = [{**t, "overlap": list(t.get("overlap") or [])} for t in d.get("turns") or []]
    # Chapters (issue 32) are optional: a transcript without them has none until it is next
    # published (`confindex chapters ID --recompute` makes them without a re-transcription).
    d["chapters"] = list(d.get("chapters") or [])
    return d


def _engine_provenance(p: dict[str, Any]) -> dict[str, Any]:
    """A version-2 provenance with `engine` in place of the faster-whisper fields (all
    versions 1 and 2 were made by faster-whisper; one that names nothing keeps no engine)."""
    p = dict(p)
    version = p.pop("faster_whisper_version", None)
    runtime = p.pop("ctranslate2_version", None)
    model, sha256 = p.pop("model", None), p.pop("model_sha256", None)
    if any(x is not None for x in (version, runtime, model, sha256)):
        p["engine"] = {
            "name": "faster-whisper",
            "version": version,
            "model": model,
            "sha256": sha256,
            "runtime": f"ctranslate2 {runtime}" if runtime else None,
        }
    return p


def save(ws: Workspace, transcript: Transcript) -> Path:
    """Write the transcript JSON atomically; returns its path."""
    path = ws.transcript_path(transcript.id)
    atomic_write_text(path, transcript.to_json() + "\n")
    return path


_JSON_KINDS = {list: "a JSON array", str: "a JSON string", int: "a number", float: "a number"}


def load_path(path: Path) -> Transcript:
    from confindex.safeio import UnreadableFile, read_json

    try:
        data = read_json(path, "transcript")
        if not isinstance(data, dict):
            # Said plainly: the AttributeError it raised read "'list' object has no attribute".
            kind = _JSON_KINDS.get(type(data), "not a JSON object")
            raise ConfindexError(f"transcript {path} is damaged ({kind}, not a transcript)")
        try:
            t = Transcript.from_dict(data)
        except ConfindexError as exc:  # say which file
            raise ConfindexError(f"transcript {path}: {exc}") from None
        if path.parent.name == "transcripts" and t.id != path.stem:
            # A copy saved under another name (or an id like ../../etc/passwd) replaced the
            # other recording's turns in the index, or stopped the whole rebuild.
            raise ConfindexError(
                f"transcript {path} is damaged (it holds recording {t.id!r}, not {path.stem!r})"
            )
        return t
    except FileNotFoundError:
        raise NotFoundError(f"no transcript at {path}") from None
    except UnreadableFile:
        raise
    except UnicodeDecodeError:
        raise ConfindexError(f"transcript {path} is damaged (not UTF-8 text)") from None
    # Bad JSON and bad values raise ValueError; missing or mistyped fields the others.
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ConfindexError(f"transcript {path} is damaged ({exc})") from None
    except OSError as exc:
        raise ConfindexError(f"cannot read transcript {path}: {exc.strerror or exc}") from None


def load(ws: Workspace, recording_id: str) -> Transcript:
    """The transcript of `recording_id` in the workspace (NotFoundError if there is none)."""
    path = ws.transcript_path(recording_id)
    if not path.exists():
        raise NotFoundError(f"no recording {recording_id!r} in {ws.transcripts}")
    return load_path(path)


def exists(ws: Workspace, recording_id: str) -> bool:
    from confindex.store.workspace import is_recording_id

    return is_recording_id(recording_id) and ws.transcript_path(recording_id).exists()


def iter_all(ws: Workspace, skipped: list[str] | None = None) -> Iterator[Transcript]:
    """Every readable transcript in the workspace, in id order. A damaged or unreadable file
    (a stray `*.json`, a FIFO, a symlink to a device) is skipped with a warning (its message
    appended to `skipped` instead, where given): one bad file must not take over lookups of
    the others."""
    for rid in ws.transcript_ids():
        try:
            yield load(ws, rid)
        except NotFoundError:
            continue  # removed meanwhile, or a file name that is no recording id
        except ConfindexError as exc:
            if skipped is None:
                log.warning("skipped: %s", exc)
            else:
                skipped.append(str(exc))


def resolve_recording(ws: Workspace, ref: str) -> Transcript:
    """Find a recording by exact id, by unique id prefix, or by the source URL/path it came from."""
    if exists(ws, ref):
        return load(ws, ref)
    ids = ws.transcript_ids()
    matches = [i for i in ids if i.startswith(ref)]
    if len(matches) == 1:
        return load(ws, matches[0])
    if len(matches) > 1:
        raise NotFoundError(f"{ref!r} matches {len(matches)} recordings: {', '.join(matches[:5])}")
    try:
        ref_path = str(Path(ref).expanduser().resolve()) if not _looks_like_url(ref) else ref
    except (OSError, RuntimeError, ValueError):
        ref_path = ref
    skipped: list[str] = []
    for t in iter_all(ws, skipped):
        if t.recording.source in (ref, ref_path) or t.recording.webpage_url == ref:
            return t
    unread = f" ({len(skipped)} damaged transcript(s) not searched)" if skipped else ""
    raise NotFoundError(f"no recording {ref!r} in {ws.transcripts}{unread}")


def _looks_like_url(s: str) -> bool:
    return "://" in s
