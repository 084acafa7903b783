"""Weight files: safetensors tensors plus ferkit's metadata, and the weights shipped in this folder.

Shipped models may be int8 (``NAME-int8.onnx``, quantized by ``ferkit export --int8``): their manifest entry
names ``precision`` and the fp32 model they were ``quantized_from``, and PyTorch-side commands given one take that
fp32 network (:func:`resolve`).

A ferkit weight file is a plain ``.safetensors`` file (no pickle) whose header metadata holds one key,
``ferkit``, a JSON object: ``arch`` (registry name), ``labels``, ``input_size``, ``normalization``
(``mean``/``std`` applied to grey levels scaled to 0..1), ``command`` (the exact command that produced
it), ``accuracy`` and anything else the trainer recorded. Shipped files are listed in ``manifest.json``
with their sha256, which :func:`shipped_path` checks before anything loads them.

An ensemble is a small JSON file (``NAME.ensemble.json``) naming its member models and how their
probabilities are combined; :class:`ferkit.runtime.classifier.Classifier` runs it as one model (see :func:`read_ensemble`).
PyTorch-side commands need one network: given the default model they take its first member.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

WEIGHTS_DIR = Path(__file__).resolve().parent
MANIFEST = WEIGHTS_DIR / "manifest.json"
PRETRAINED_DIR = WEIGHTS_DIR / "pretrained"  # face-pretrained backbones to fine-tune from (``--init NAME``), no head
# fer-faceres (issue 30): the face-pretrained FaceRes fine-tuned on FER2013 + RAF-DB + AffectNet, 112x112 RGB, chosen in
# one compare run (docs/results/faceres.txt) beside fer-real-int8: RAF-DB val 83.77 vs 79.93, AffectNet val 69.39 vs
# 57.41, CK+ 78.33 vs 70.00, ExpW dev 31.54 vs 29.38, PublicTest 64.26 vs 66.12 (-1.86, within the 2 points allowed).
# Its int8 copy lost 2.03 points on PublicTest against fer-real-int8: over the limit, so it ships as an option only.
DEFAULT_MODEL = "fer-faceres"
ENSEMBLE_SUFFIX = ".ensemble.json"
# The face detector every inference command uses unless told otherwise (ferkit.runtime.detect): CenterFace quantized to int8
# (issue 25), chosen after one compare run beside fp32 (docs/results/int8-detector.txt vs int8.txt): ExpW dev faces
# found 1842 vs 1838 of 1896, end to end 29.54% vs 29.11% with fer-real-int8. Training data keeps fp32 framing.
DEFAULT_DETECTOR = "centerface-int8"


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
    """Path of a shipped weight file (``kind``: ``safetensors`` or ``onnx``; a shipped ensemble's JSON file
    whatever the kind; for an int8 model, ONNX only, its fp32 source's file of any other kind), its sha256
    verified."""
    manifest = read_manifest()
    if name not in manifest:
        raise WeightsError(f"no shipped weights named {name!r}; shipped: {', '.join(sorted(manifest)) or 'none'}")
    entry = manifest[name].get(kind) or manifest[name].get("ensemble")
    source = manifest[name].get("onnx", {}).get("quantized_from")
    if entry is None and source is not None:  # an int8 model is ONNX only: its fp32 network has the other kinds
        return shipped_path(source, kind)
    if entry is None:
        raise WeightsError(f"shipped model {name!r} has no {kind} file")
    path = WEIGHTS_DIR / entry["file"]
    if not path.exists():
        raise WeightsError(f"{path}: shipped weight file is missing (reinstall ferkit)")
    if sha256_of(path) != entry["sha256"]:
        raise WeightsError(f"{path}: sha256 does not match manifest.json: the file is damaged (reinstall ferkit)")
    return path


def resolve(name_or_path: str | Path | None, kind: str = "safetensors") -> Path:
    """A shipped model's name (``None`` = the default model), a path to a weight file or an ensemble file, or a
    model folder (``ferkit finetune``'s output: its ``model.onnx`` or ``model.safetensors``, as ``kind`` asks).

    ``kind="safetensors"`` asks for one network (PyTorch): a shipped int8 model (``NAME-int8``, ONNX only) gives
    the fp32 network it was quantized from; the default model, where it is an ensemble, gives its first member;
    any other ensemble is refused with a clear error."""
    path = _resolve(DEFAULT_MODEL if name_or_path is None else name_or_path, kind)
    if kind == "safetensors" and is_ensemble(path):
        members = [m["model"] for m in read_ensemble(path)["members"]]
        if name_or_path is None:
            return resolve(members[0], kind)
        raise WeightsError(f"{name_or_path}: an ensemble of {', '.join(map(str, members))}; this needs one network: "
                           "give one of them")
    return path


def pretrained_path(name: str) -> Path | None:
    """The file of a shipped pretrained backbone (``weights/pretrained/manifest.json``; its sha256 verified), or None
    when no backbone has that name. See ``tools/import_tfjs.py`` for where they come from."""
    manifest_file = PRETRAINED_DIR / "manifest.json"
    entry = json.loads(manifest_file.read_text()).get(name) if manifest_file.exists() else None
    if entry is None:
        return None
    path = PRETRAINED_DIR / entry["file"]
    if not path.exists() or sha256_of(path) != entry["sha256"]:
        raise WeightsError(f"{path}: pretrained weight file missing or damaged (sha256 differs; reinstall ferkit)")
    return path


def _resolve(name_or_path: str | Path, kind: str) -> Path:
    path = Path(name_or_path)
    if kind == "safetensors" and not path.suffix and (pretrained := pretrained_path(str(name_or_path))) is not None:
        return pretrained
    if path.is_dir():
        files = [path / f"model.{kind}", path / "model.safetensors", path / "model.onnx"]
        for candidate in files:
            if candidate.exists():
                _check_folder_file(path, candidate)
                return candidate
        raise WeightsError(f"{path}: a model folder holds model.onnx or model.safetensors; this one has neither")
    if path.suffix in (".safetensors", ".onnx", ".json") or path.exists():
        if not path.exists():
            raise WeightsError(f"{path}: no such weight file")
        return path
    return shipped_path(str(name_or_path), kind)


def _check_folder_file(folder: Path, path: Path) -> None:
    """A model folder's ``manifest.json`` (written by ``ferkit finetune``) lists each file's sha256: a file that
    changed since is refused (WeightsError naming it). A folder without a manifest is taken as it is."""
    manifest_file = folder / "manifest.json"
    if not manifest_file.exists():
        return
    try:
        entries = {e["file"]: e["sha256"] for entry in json.loads(manifest_file.read_text()).values()
                   for e in entry.values() if isinstance(e, dict) and "file" in e}
    except (ValueError, AttributeError, KeyError, TypeError):
        raise WeightsError(f"{manifest_file}: not a ferkit manifest (damaged JSON)") from None
    if path.name in entries and sha256_of(path) != entries[path.name]:
        raise WeightsError(f"{path}: sha256 does not match {manifest_file.name}: the file changed or is damaged")


def is_ensemble(path: str | Path) -> bool:
    return str(path).endswith(".json")


def read_ensemble(path: str | Path) -> dict:
    """An ensemble file, checked: ``{"ferkit_ensemble": 1, "name": ..., "combine": "log-mean",
    "members": [{"model": NAME_OR_PATH, "weight": W}, ...], "metadata": {...}}``.

    ``combine``: ``log-mean`` (the weighted mean of the members' log-probabilities, renormalised: a geometric
    mean) or ``mean`` (the weighted mean of their probabilities). A member is a shipped name or a path relative
    to the file's folder; weights are positive and normalised to sum to 1. Members that are ensembles
    themselves are refused."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable ensemble file ({exc})") from None
    if not isinstance(spec, dict) or spec.get("ferkit_ensemble") != 1:
        raise WeightsError(f"{path}: not a ferkit ensemble file (no \"ferkit_ensemble\": 1)")
    members = spec.get("members")
    if not isinstance(members, list) or not members:
        raise WeightsError(f"{path}: an ensemble needs a non-empty \"members\" list")
    out = []
    for i, m in enumerate(members):
        if not isinstance(m, dict) or "model" not in m:
            raise WeightsError(f"{path}: member {i} must be {{\"model\": NAME_OR_PATH, \"weight\": W}}")
        weight = m.get("weight", 1.0)
        if not isinstance(weight, (int, float)) or not weight > 0:
            raise WeightsError(f"{path}: member {i} ({m['model']}) has weight {weight!r}; weights must be > 0")
        model = str(m["model"])
        local = path.parent / model
        out.append({"model": str(local) if (local.suffix or local.is_dir()) and local.exists() else model,
                    "weight": float(weight)})
    total = sum(m["weight"] for m in out)
    for m in out:
        m["weight"] /= total
    combine = spec.get("combine", "log-mean")
    if combine not in ("log-mean", "mean"):
        raise WeightsError(f"{path}: combine must be log-mean or mean, not {combine!r}")
    for m in out:
        if is_ensemble(_resolve(m["model"], "onnx")):
            raise WeightsError(f"{path}: member {m['model']} is itself an ensemble; list its members instead")
    return {**spec, "members": out, "combine": combine, "name": spec.get("name", path.name[:-len(ENSEMBLE_SUFFIX)]
                                                                         if path.name.endswith(ENSEMBLE_SUFFIX)
                                                                         else path.stem)}


def read_metadata(path: str | Path) -> dict:
    """The ferkit metadata of a ``.safetensors`` weight file or of an ``.onnx`` model (its ``metadata_props``, read
    with onnxruntime). Raises WeightsError naming the file when it is not a ferkit model."""
    from safetensors import safe_open

    if str(path).endswith(".onnx"):
        import onnxruntime as ort

        try:
            meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
        except Exception as exc:
            raise WeightsError(f"{path}: not a loadable ONNX model ({exc})") from None
        if "ferkit" not in meta:
            raise WeightsError(f"{path}: ONNX model without ferkit metadata")
        return json.loads(meta["ferkit"])
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
    tmp.chmod(0o644)  # safetensors creates its file private (0600); a weight file is read by others (a package)
    tmp.replace(path)


def load_tensors(path: str | Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except Exception as exc:
        raise WeightsError(f"{path}: cannot read tensors ({exc})") from None
