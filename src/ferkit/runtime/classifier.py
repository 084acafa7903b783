"""Inference without PyTorch: an onnxruntime classifier of face crops (one network or an ensemble), 48x48 grey or
larger colour ones, as the model's :class:`ferkit.runtime.spec.ModelSpec` says.

The ONNX files themselves (export, int8 quantization, metadata) are :mod:`ferkit.runtime.onnx_io`'s business.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ferkit.core.inference import combine_probabilities, softmax
from ferkit.runtime.onnx_io import INPUT_NAME, OUTPUT_NAME, onnx_for, session_options
from ferkit.runtime.spec import ModelSpec, SpecError
from ferkit.weights import WeightsError, is_ensemble, read_ensemble, resolve

class Classifier:
    """Classify face crops with onnxruntime (no PyTorch): one network, or an ensemble of them. What a face crop is
    (48x48 grey, 112x112 RGB, ...) is the model's :attr:`spec`; every loaded file is checked against it.

    >>> clf = Classifier()                               # the shipped default model
    >>> probs = clf.predict_proba(faces)                 # doctest: +SKIP
    >>> clf.labels[probs[0].argmax()]                    # doctest: +SKIP
    'happy'
    """

    def __init__(self, model: str | Path | None = None, *, threads: int = 1, tta: bool | None = None):
        """``model``: a shipped name (None: the default), an .onnx file, a .safetensors file such as a run's
        model.safetensors (exported to ONNX once, into the cache; that needs PyTorch), a model folder, or an
        ensemble file (``NAME.ensemble.json``, see :func:`ferkit.weights.read_ensemble`). ``threads``: onnxruntime
        intra-op threads (0: all cores). ``tta``: override the model's own flip test-time augmentation (its
        metadata says whether it was trained and measured with it; off halves the cost); for an ensemble it
        applies to every member."""
        self.path = resolve(model, "onnx")
        self.members: list[Classifier] = []
        if is_ensemble(self.path):
            self._load_ensemble(threads, tta)
            return
        import onnxruntime as ort

        if self.path.suffix == ".safetensors":
            self.path = onnx_for(self.path)
        opts = session_options(threads)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise WeightsError(f"{self.path}: not a loadable ONNX model ({exc})") from None
        props = self.session.get_modelmeta().custom_metadata_map
        if "ferkit" not in props:
            raise WeightsError(f"{self.path}: ONNX model without ferkit metadata")
        try:
            self.metadata = json.loads(props["ferkit"])
            self.spec = ModelSpec.from_metadata(self.metadata, self.path)
        except (ValueError, SpecError) as exc:
            raise WeightsError(str(exc) if isinstance(exc, SpecError) else f"{self.path}: unreadable metadata ({exc})") from None
        self._check_graph()
        self.labels: list[str] = list(self.spec.labels)
        self.tta = self.spec.tta if tta is None else tta
        self.temperature = self.spec.temperature  # fitted by `ferkit calibrate`
        self.name: str = self.spec.name
        self.precision: str = self.spec.precision  # "int8": quantized (ferkit export --int8)

    @property
    def preprocessing(self) -> dict | None:
        """What the model's faces go through before normalisation (its spec's, e.g. equalize_hist; an ensemble: None,
        each member applies its own). Read-only: the spec is the model's; give another spec to change it."""
        return self.spec.preprocessing

    def _check_graph(self) -> None:
        """The graph's input and output agree with the spec: input ``input`` float (B, C, S, S), output (B, labels)."""
        spec = self.spec
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        want = [spec.channels, spec.size, spec.size]
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME or inputs[0].type != "tensor(float)" \
                or len(inputs[0].shape) != 4 or list(inputs[0].shape[1:]) != want:
            got = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
            raise WeightsError(f"{self.path}: the graph takes {got}; its metadata promises {INPUT_NAME} float "
                               f"(batch, {', '.join(map(str, want))})")
        if not any(o.name == OUTPUT_NAME for o in outputs):
            raise WeightsError(f"{self.path}: the graph has no output named {OUTPUT_NAME}")
        width = next(o for o in outputs if o.name == OUTPUT_NAME).shape[-1]
        if isinstance(width, int) and width != len(spec.labels):
            raise WeightsError(f"{self.path}: the graph gives {width} outputs but its metadata names {len(spec.labels)} "
                               f"labels ({', '.join(spec.labels)})")

    def _load_ensemble(self, threads: int, tta: bool | None) -> None:
        from dataclasses import replace

        spec = read_ensemble(self.path)
        self.members = [Classifier(m["model"], threads=threads, tta=tta) for m in spec["members"]]
        self.weights = np.array([m["weight"] for m in spec["members"]], dtype=np.float64)
        self.combine: str = spec["combine"]
        first = self.members[0]
        for m in self.members[1:]:
            if m.labels != first.labels or m.spec.face_shape != first.spec.face_shape:
                raise WeightsError(f"{self.path}: members {first.name} and {m.name} differ in labels or input")
            if m.spec.framing != first.spec.framing:
                raise WeightsError(f"{self.path}: members {first.name} and {m.name} expect differently framed faces")
        self.name = spec["name"]
        self.labels = first.labels
        self.tta = any(m.tta for m in self.members)
        self.temperature = 1.0  # each member applies its own
        self.spec = replace(first.spec, name=self.name, tta=self.tta, temperature=1.0, preprocessing=None,
                            arch="ensemble", path=str(self.path))
        self.metadata = {**spec.get("metadata", {}), "name": self.name, "arch": "ensemble", "combine": self.combine,
                         "labels": self.labels, "input_size": first.metadata["input_size"],
                         "channels": first.spec.channels,
                         "framing": first.spec.framing,
                         "members": [{"name": m.name, "arch": m.metadata.get("arch"), "weight": float(w),
                                      "preprocessing": m.metadata.get("preprocessing"), "tta": m.tta,
                                      "temperature": m.temperature} for m, w in zip(self.members, self.weights)]}

    def _single(self, what: str) -> None:
        if self.members:
            raise ValueError(f"{self.name} is an ensemble: its members preprocess faces their own way; {what} is "
                             "for one network (use predict_proba, or one of .members)")

    def preprocess(self, faces: np.ndarray) -> np.ndarray:
        """Face crops -> the network's float32 input (N, C, S, S) (:meth:`ferkit.runtime.spec.ModelSpec.network_input`):
        (N, *spec.face_shape) or one face, or (N, 48, 48) grey faces (FER2013's) that a larger colour model takes
        enlarged; levels by :func:`as_grey_levels`' rule, then the model's preprocessing and normalisation. One
        network only (not an ensemble). Raises ValueError for another shape."""
        self._single("preprocess")
        return self.spec.network_input(faces)

    def logits(self, faces: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Raw logits of one network (no temperature, no TTA)."""
        self._single("logits")
        return self._run(self.preprocess(faces), batch_size)

    def _run(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        out = [self.session.run([OUTPUT_NAME], {INPUT_NAME: x[i:i + batch_size]})[0]
               for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)

    def predict_proba(self, faces: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Calibrated probabilities (N, 7) in the order of :attr:`labels`. ``faces``: (N, *spec.face_shape) crops or
        one, e.g. (N, 48, 48) grey or (N, 112, 112, 3) RGB, or (N, 48, 48) grey faces for any model; uint8 0..255,
        16-bit levels, or floats in 0..1 or 0..255 (the rule: :func:`as_grey_levels`).

        Each view's logits are divided by the model's fitted temperature before the softmax; with flip TTA
        (where the model asks for it) the probabilities of the face and its mirror image are averaged. An
        ensemble combines its members' probabilities: the weighted mean of their logarithms, renormalised
        (``log-mean``), or of the probabilities themselves (``mean``).
        """
        if self.members:
            probs = [m.predict_proba(faces, batch_size) for m in self.members]
            return combine_probabilities(probs, self.weights, self.combine).astype(np.float32)
        x = self.preprocess(faces)
        probs = softmax(self._run(x, batch_size) / self.temperature)
        if self.tta:  # the mirror image of the preprocessed face, as in training and in the PyTorch path
            probs = (probs + softmax(self._run(np.ascontiguousarray(x[..., ::-1]), batch_size) / self.temperature)) / 2
        return probs.astype(np.float32)


def as_grey_levels(faces: np.ndarray) -> np.ndarray:
    """Faces as uint8 grey levels 0..255, by the rule every entry point shares (:func:`ferkit.core.images.to_levels`):
    uint8 as is; uint16 and integers over 255 (up to 65535) as 16-bit levels; floats in 0..1 scaled by 255,
    in 0..255 as is, in 0..65535 as 16-bit levels; NaN, infinity, negative values, larger values, bool and
    complex raise ValueError naming the dtype and the range found.

    A float face that is all but black (every value <= 1 on a 0..255 scale) is read as 0..1: pass uint8 to
    avoid the ambiguity.
    """
    from ferkit.core.images import to_levels

    return to_levels(faces, "faces")
