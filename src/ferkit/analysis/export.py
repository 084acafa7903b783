"""Turn a run's ``model.safetensors`` into shipped weights: fp16 safetensors + ONNX (+ an int8 ONNX) + manifest entry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ferkit.runtime.onnx_io import onnx_for, quantize_int8, write_onnx
from ferkit.weights import WEIGHTS_DIR, WeightsError, load_tensors, read_metadata, resolve, save_weights, sha256_of

__all__ = ["export_weights", "export_int8", "export_model", "quantize_model_folder", "runs_int8", "check_calibration", "calibration_faces", "onnx_for",
           "update_metadata", "write_ensemble"]
INT8_SUFFIX = "-int8"


def export_weights(source: str | Path, name: str, dest: str | Path = WEIGHTS_DIR, *, extra_metadata: dict | None = None,
                   onnx: bool = True) -> dict:
    """Write ``dest/NAME.safetensors`` (fp16) and ``dest/NAME.onnx`` and record both in ``manifest.json``.

    The ONNX graph is exported from the fp16-rounded weights (:func:`ferkit.runtime.onnx_io.write_onnx` says which
    initialisers stay fp16). Returns the manifest entry. Needs PyTorch.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    meta = {**read_metadata(source), **(extra_metadata or {}), "name": name}
    half = {k: (v.astype(np.float16) if v.dtype.kind == "f" else v) for k, v in load_tensors(source).items()}
    st_path = dest / f"{name}.safetensors"
    save_weights(st_path, half, {**meta, "dtype": "float16"})
    entry = {"safetensors": {"file": st_path.name, "sha256": sha256_of(st_path)}}
    if onnx:
        onnx_path = write_onnx(half, meta, dest / f"{name}.onnx")
        entry["onnx"] = {"file": onnx_path.name, "sha256": sha256_of(onnx_path)}
    _record(dest, name, entry)
    return entry


def _record(dest: Path, name: str, entry: dict) -> None:
    """Add or replace ``name``'s entry in ``dest/manifest.json``."""
    manifest_path = dest / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest[name] = entry
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def calibration_faces(sources: list[str | Path], count: int = 512, *, framing: str = "box", seed: int = 0,
                      size: int = 48, colour: bool = False) -> np.ndarray:
    """``count`` training faces (K, 48, 48) uint8 (or the model's input: (K, size, size[, 3]) with ``size`` and
    ``colour``) drawn evenly from ``sources`` (seed ``seed``) to read int8
    activation ranges from: a FER2013 file's Training rows, or a labelled crop folder's training part re-framed as
    ``ferkit train --data FOLDER`` frames it (:func:`ferkit.data.sources.load_crop_folder`; never its validation part,
    so the held-out figures stay clean). Raises :class:`ferkit.data.fer2013.DataError` naming an unreadable source."""
    from ferkit.data.fer2013 import load_fer2013
    from ferkit.data.sources import align_fer2013, is_crop_folder, load_crop_folder

    if not sources:
        raise WeightsError("int8 calibration needs at least one source of training faces")
    rng = np.random.default_rng(seed)
    share = [count // len(sources) + (i < count % len(sources)) for i in range(len(sources))]
    faces = []
    for source, k in zip(sources, share):
        if is_crop_folder(source):
            images = load_crop_folder(source, framing=framing, size=size, colour=colour).faces.split("Training").images
        else:
            from ferkit.runtime.spec import as_model_input

            images = load_fer2013(source).split("Training").images
            if framing == "align":
                images = align_fer2013(images)[0]
            images = as_model_input(images, size, colour)
        faces.append(images[rng.choice(len(images), min(k, len(images)), replace=False)])
    return np.concatenate(faces)


def export_int8(name: str, faces: np.ndarray, dest: str | Path = WEIGHTS_DIR, *, sources: list[str] | None = None) -> dict:
    """Quantize exported model ``dest/NAME.onnx`` to ``dest/NAME-int8.onnx`` (static int8, per-channel weights:
    :func:`ferkit.runtime.onnx_io.quantize_int8`), calibrated on ``faces`` (K, 48, 48) uint8 training faces, which go
    through the model's own preprocessing first. The int8 model keeps the fp32 model's metadata (labels,
    normalisation, temperature, framing) plus ``precision``, ``quantized_from`` and the calibration it used; its
    manifest entry records ``precision`` and ``quantized_from``. Whether it ships is decided by measurement:
    ``benchmarks/compare_models.py`` scores it beside the fp32 model on PublicTest and ExpW dev in one run and
    ``tools/record_quantized.py`` records the accuracy change (:func:`update_metadata`), refusing a model that
    loses more than 0.5 points. Returns the manifest entry."""
    from ferkit.core.provenance import command_line
    from ferkit.runtime.classifier import Classifier

    dest = Path(dest)
    fp32 = dest / f"{name}.onnx"
    if not fp32.exists():
        raise WeightsError(f"{fp32}: no such file (export the model first)")
    clf = Classifier(fp32, tta=False)
    fp32_only = ("accuracy", "accuracy_note", "measured")  # the fp32 model's figures; the int8 model's are measured
    meta = {**{k: v for k, v in clf.metadata.items() if k not in fp32_only}, "name": name + INT8_SUFFIX,
            "quantized_from": {"name": name, "sha256": sha256_of(fp32)},
            "quantization": {"method": "onnxruntime static QDQ, per-channel int8 weights (7-bit range), uint8 "
                                       "activations, min-max calibration", "faces": int(len(faces)),
                             "sources": [str(s) for s in sources or []], "command": command_line()}}
    path = quantize_int8(fp32, dest / f"{name}{INT8_SUFFIX}.onnx", clf.preprocess(faces), meta)
    entry = {"onnx": {"file": path.name, "sha256": sha256_of(path), "precision": "int8", "quantized_from": name}}
    _record(dest, name + INT8_SUFFIX, entry)
    return entry


def runs_int8(base: str | None) -> bool:
    """Whether ``base`` (a name, file or model folder) runs as int8 ONNX: the fine-tuned model is then quantized too."""
    try:
        return read_metadata(resolve(base, "onnx")).get("precision") == "int8"
    except WeightsError:
        return False


def quantize_model_folder(out: Path, train_crops: np.ndarray, held_crops: np.ndarray, held_labels: np.ndarray) -> float:
    """Replace ``out/model.onnx`` by its int8 copy (:func:`ferkit.analysis.export.export_int8`, calibrated on up to 512 of the
    training crops), keeping ``model.safetensors`` for PyTorch; returns the int8 model's held-out accuracy (NaN
    when nothing was held out)."""
    from ferkit.runtime.classifier import Classifier

    pick = np.random.default_rng(0).permutation(len(train_crops))[:512]
    export_int8("model", train_crops[pick], out)
    (out / "model-int8.onnx").replace(out / "model.onnx")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest.pop("model-int8", None)
    manifest["model"]["onnx"] = {"file": "model.onnx", "sha256": sha256_of(out / "model.onnx"), "precision": "int8"}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if not len(held_labels):
        return float("nan")
    return float((Classifier(out / "model.onnx").predict_proba(held_crops).argmax(1) == held_labels).mean())


def check_calibration(sources: list[str | Path] | None) -> None:
    """Raise WeightsError naming the first calibration source that does not exist."""
    for source in sources or []:
        if not Path(source).exists():
            raise WeightsError(f"{source}: no such file or folder (--calibration)")


def export_model(weights: str | Path, name: str, dest: str | Path = WEIGHTS_DIR, *, int8: bool = False,
                 calibration: list[str | Path] | None = None, calibration_count: int = 512) -> dict[str, dict]:
    """What ``ferkit export`` does: :func:`export_weights` of ``weights`` as ``NAME``, and with ``int8`` also
    ``NAME-int8`` (:func:`export_int8`), calibrated on ``calibration_count`` training faces drawn from
    ``calibration`` (:func:`calibration_faces`) framed as the model was trained. Returns the manifest entry of each
    name written. Raises WeightsError, :class:`ferkit.data.fer2013.DataError` (an unreadable calibration source) or
    OSError."""
    check_calibration(calibration)  # before anything is written
    entries = {name: export_weights(weights, name, dest)}
    if int8:
        from ferkit.runtime.spec import ModelSpec

        spec = ModelSpec.from_metadata(read_metadata(weights), weights)
        faces = calibration_faces(calibration or [], calibration_count, framing=spec.framing, size=spec.size,
                                  colour=spec.colour)
        entries[f"{name}-int8"] = export_int8(name, faces, dest, sources=[str(c) for c in calibration or []])
    return entries


def update_metadata(name: str, updates: dict, dest: str | Path = WEIGHTS_DIR, *, drop: tuple[str, ...] = ()) -> dict:
    """Merge ``updates`` into the metadata of shipped model ``name`` (its safetensors and its ONNX file alike,
    whichever it has), removing the keys in ``drop``, leaving every weight as it is, and record the new sha256
    in ``manifest.json``. Returns the manifest entry."""
    import onnx

    from ferkit.runtime.onnx_io import set_metadata

    dest = Path(dest)
    manifest_path = dest / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    entry = manifest[name]

    def merged(meta: dict) -> dict:
        return {k: v for k, v in {**meta, **updates}.items() if k not in drop}

    if "safetensors" in entry:
        st_path = dest / entry["safetensors"]["file"]
        save_weights(st_path, load_tensors(st_path), merged(read_metadata(st_path)))
        entry["safetensors"]["sha256"] = sha256_of(st_path)
    if "onnx" in entry:
        onnx_path = dest / entry["onnx"]["file"]
        proto = onnx.load_model(str(onnx_path))
        props = {p.key: p.value for p in proto.metadata_props}
        set_metadata(proto, merged(json.loads(props["ferkit"])))
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

    from ferkit.runtime.classifier import Classifier
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
