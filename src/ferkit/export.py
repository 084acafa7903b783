"""Turn a run's ``model.safetensors`` into shipped weights: fp16 safetensors + ONNX + manifest entry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ferkit.weights import WEIGHTS_DIR, WeightsError, load_tensors, read_metadata, save_weights, sha256_of


def export_weights(source: str | Path, name: str, dest: str | Path = WEIGHTS_DIR, *, extra_metadata: dict | None = None,
                   onnx: bool = True) -> dict:
    """Write ``dest/NAME.safetensors`` (fp16) and ``dest/NAME.onnx`` and record both in ``manifest.json``.

    The ONNX graph is exported from the fp16-rounded weights. Its initialisers stay fp16 (cast to fp32 in
    the graph) for networks without BatchNorm; with BatchNorm the exporter folds each BN into its conv,
    and rounding the *folded* weights to fp16 again would move the logits by ~1e-3 from the PyTorch model,
    so those graphs keep fp32 initialisers and agree with PyTorch to ~1e-6. Returns the manifest entry.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    meta = {**read_metadata(source), **(extra_metadata or {}), "name": name}
    half = {k: (v.astype(np.float16) if v.dtype.kind == "f" else v) for k, v in load_tensors(source).items()}
    st_path = dest / f"{name}.safetensors"
    save_weights(st_path, half, {**meta, "dtype": "float16"})
    entry = {"safetensors": {"file": st_path.name, "sha256": sha256_of(st_path)}}
    if onnx:
        onnx_path = _write_onnx(half, meta, dest / f"{name}.onnx")
        entry["onnx"] = {"file": onnx_path.name, "sha256": sha256_of(onnx_path)}
    _record(dest, name, entry)
    return entry


def _record(dest: Path, name: str, entry: dict) -> None:
    """Add or replace ``name``'s entry in ``dest/manifest.json``."""
    manifest_path = dest / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest[name] = entry
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _write_onnx(tensors: dict, meta: dict, path: Path) -> Path:
    import torch

    from ferkit.models import create_model, load_tensors_into
    from ferkit.runtime import export_onnx

    model = load_tensors_into(create_model(meta["arch"]), tensors)
    fp16 = not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    dtype = "float16 weights, float32 compute" if fp16 else "float32 (BatchNorm folded into the convs)"
    return export_onnx(model, path, {**meta, "dtype": dtype}, fp16_weights=fp16)


def onnx_for(source: str | Path) -> Path:
    """The ONNX file for a ``.safetensors`` weight file (e.g. a run's model.safetensors), exported once into the
    cache (``FERKIT_CACHE``, default ``~/.cache/ferkit``) under the file's sha256 and reused after that.
    Needs PyTorch for the first export only."""
    import os

    source = Path(source)
    digest = sha256_of(source)
    root = Path(os.environ.get("FERKIT_CACHE", Path.home() / ".cache" / "ferkit")) / "onnx"
    path = root / f"{source.stem}-{digest[:16]}.onnx"
    if path.exists():
        return path
    meta = read_metadata(source)
    try:
        import torch  # noqa: F401
    except ImportError:
        raise WeightsError(f"{source}: running a .safetensors file needs a one-time export to ONNX, which needs PyTorch "
                           "(pip install 'ferkit[train]'); or export it where PyTorch is installed with "
                           "`ferkit export FILE --name NAME --out DIR` and pass the .onnx file") from None
    root.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.onnx")
    _write_onnx(load_tensors(source), {**meta, "exported_from": str(source.resolve()), "source_sha256": digest}, tmp)
    os.replace(tmp, path)
    return path


def update_metadata(name: str, updates: dict, dest: str | Path = WEIGHTS_DIR) -> dict:
    """Merge ``updates`` into the metadata of shipped model ``name`` (its safetensors and its ONNX file alike),
    leaving every weight as it is, and record the new sha256 in ``manifest.json``. Returns the manifest entry."""
    import onnx

    dest = Path(dest)
    manifest_path = dest / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    entry = manifest[name]
    st_path = dest / entry["safetensors"]["file"]
    save_weights(st_path, load_tensors(st_path), {**read_metadata(st_path), **updates})
    entry["safetensors"]["sha256"] = sha256_of(st_path)
    if "onnx" in entry:
        onnx_path = dest / entry["onnx"]["file"]
        proto = onnx.load_model(str(onnx_path))
        props = {p.key: p.value for p in proto.metadata_props}
        meta = {**json.loads(props["ferkit"]), **updates}
        for p in proto.metadata_props:
            if p.key == "ferkit":
                p.value = json.dumps(meta, sort_keys=True)
        onnx.save_model(proto, str(onnx_path))
        entry["onnx"]["sha256"] = sha256_of(onnx_path)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return entry


def write_ensemble(members: list[str], name: str, dest: str | Path = WEIGHTS_DIR, *, weights: list[float] | None = None,
                   combine: str = "log-mean", metadata: dict | None = None) -> tuple[Path, dict]:
    """Write ``dest/NAME.ensemble.json`` for ``members`` (shipped names, weight files or model folders) and record it
    in ``dest/manifest.json``. A member path is stored relative to ``dest``. Every member is loaded once to check
    that they fit together (same labels and input size). Returns the file and its manifest entry."""
    import os

    from ferkit.runtime import Classifier
    from ferkit.weights import ENSEMBLE_SUFFIX, read_manifest

    if len(members) < 2:
        raise WeightsError("an ensemble needs at least 2 members")
    weights = [1.0] * len(members) if weights is None else list(weights)
    if len(weights) != len(members):
        raise WeightsError(f"{len(weights)} weights for {len(members)} members")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shipped = read_manifest()
    stored = []
    for m in members:
        is_name = m in shipped and not Path(m).exists()
        stored.append(m if is_name else os.path.relpath(Path(m).resolve(), dest.resolve()))
    spec = {"ferkit_ensemble": 1, "name": name, "combine": combine,
            "members": [{"model": m, "weight": float(w)} for m, w in zip(stored, weights)],
            "metadata": metadata or {}}
    path = dest / f"{name}{ENSEMBLE_SUFFIX}"
    tmp = path.with_name(f".{name}.tmp{ENSEMBLE_SUFFIX}")  # beside it: member paths resolve the same way
    tmp.write_text(json.dumps(spec, indent=2) + "\n")
    try:
        Classifier(tmp)  # the members load and fit together
    except WeightsError:
        tmp.unlink()
        raise
    tmp.replace(path)
    entry = {"ensemble": {"file": path.name, "sha256": sha256_of(path)}}
    _record(dest, name, entry)
    return path, entry
