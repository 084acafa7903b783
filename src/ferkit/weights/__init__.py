"""Weight files: safetensors tensors plus ferkit's metadata, and the weights shipped in this folder.

A ferkit weight file is a plain ``.safetensors`` file (no pickle) whose header metadata holds one key,
``ferkit``, a JSON object: ``arch`` (registry name), ``labels``, ``input_size``, ``normalization``
(``mean``/``std`` applied to grey levels scaled to 0..1), ``command`` (the exact command that produced
it), ``accuracy`` and anything else the trainer recorded. Shipped files are listed in ``manifest.json``
with their sha256, which :func:`shipped_path` checks before anything loads them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

WEIGHTS_DIR = Path(__file__).resolve().parent
MANIFEST = WEIGHTS_DIR / "manifest.json"
DEFAULT_MODEL = "fer-m"


class WeightsError(ValueError):
    """A weight file is missing, damaged or not a ferkit weight file."""


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest() -> dict:
    if not MANIFEST.exists():
        return {}
    return json.loads(MANIFEST.read_text())


def shipped_models() -> list[str]:
    return sorted(read_manifest())


def shipped_path(name: str, kind: str = "safetensors") -> Path:
    """Path of a shipped weight file (``kind``: ``safetensors`` or ``onnx``), its sha256 verified."""
    manifest = read_manifest()
    if name not in manifest:
        raise WeightsError(f"no shipped weights named {name!r}; shipped: {', '.join(sorted(manifest)) or 'none'}")
    entry = manifest[name].get(kind)
    if entry is None:
        raise WeightsError(f"shipped model {name!r} has no {kind} file")
    path = WEIGHTS_DIR / entry["file"]
    if not path.exists():
        raise WeightsError(f"{path}: shipped weight file is missing (reinstall ferkit)")
    if sha256_of(path) != entry["sha256"]:
        raise WeightsError(f"{path}: sha256 does not match manifest.json: the file is damaged (reinstall ferkit)")
    return path


def resolve(name_or_path: str | Path | None, kind: str = "safetensors") -> Path:
    """A shipped model's name (``None`` = the default model), a path to a weight file, or a model folder
    (``ferkit finetune``'s output: its ``model.onnx`` or ``model.safetensors``, as ``kind`` asks)."""
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    path = Path(name_or_path)
    if path.is_dir():
        files = [path / f"model.{kind}", path / "model.safetensors", path / "model.onnx"]
        for candidate in files:
            if candidate.exists():
                return candidate
        raise WeightsError(f"{path}: a model folder holds model.onnx or model.safetensors; this one has neither")
    if path.suffix in (".safetensors", ".onnx") or path.exists():
        if not path.exists():
            raise WeightsError(f"{path}: no such weight file")
        return path
    return shipped_path(str(name_or_path), kind)


def read_metadata(path: str | Path) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
    except Exception as exc:
        raise WeightsError(f"{path}: not a safetensors file ({exc})") from None
    if "ferkit" not in meta:
        raise WeightsError(f"{path}: safetensors file without ferkit metadata (was it written by ferkit?)")
    return json.loads(meta["ferkit"])


def save_weights(path: str | Path, tensors: dict[str, np.ndarray], metadata: dict) -> None:
    """Write numpy tensors + metadata atomically."""
    from safetensors.numpy import save_file

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp),
              metadata={"ferkit": json.dumps(metadata, sort_keys=True)})
    tmp.replace(path)


def load_tensors(path: str | Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except Exception as exc:
        raise WeightsError(f"{path}: cannot read tensors ({exc})") from None
