"""The ModelSpec: everything about a model that running it needs, resolved once from its file's metadata.

A model file (ONNX or safetensors) carries its own configuration, as timm's weights carry a ``pretrained_cfg``:
labels, input size and channels, normalisation, the framing its faces were cropped with, preprocessing, flip TTA,
the fitted temperature, precision, where it came from. :func:`ModelSpec.from_metadata` reads and checks it once;
the runtimes (:class:`ferkit.runtime.classifier.Classifier`, the PyTorch path in :mod:`ferkit.core.inference`) and every command
that crops faces for it (:meth:`ModelSpec.crop`) read that object instead of the metadata.

Two kinds of input exist: FER2013's 48x48 grey faces (every from-scratch ferkit network) and larger colour faces
(``faceres``: 112x112 RGB, pixels 0..255). A 48x48 grey face handed to a colour model (FER2013's own rows, in
evaluation and calibration) is enlarged and replicated to RGB as the model saw FER2013's faces in training
(:func:`as_model_input`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ferkit.core.labels import EMOTIONS


class SpecError(ValueError):
    """A model's metadata is missing a field or holds a value no ferkit runtime can honour."""


@dataclass(frozen=True)
class ModelSpec:
    """What a model takes and gives, from its metadata (see the module docstring)."""

    name: str
    labels: tuple[str, ...]  # output order
    size: int  # input side, px (48 or 112)
    channels: int  # 1 (grey) or 3 (RGB)
    mean: float  # normalisation of pixels scaled to 0..1: (x / 255 - mean) / std
    std: float
    framing: str = "box"  # ferkit.runtime.crop.FRAMINGS
    preprocessing: dict | None = None  # ferkit.runtime.preprocess spec (grey models only)
    tta: bool = False  # flip test-time augmentation
    temperature: float = 1.0  # fitted by `ferkit calibrate`
    precision: str = "fp32"
    arch: str = ""
    path: str = ""
    metadata: dict = field(default_factory=dict, compare=False, repr=False)  # the whole record, read-only by use

    @property
    def colour(self) -> bool:
        return self.channels == 3

    @property
    def face_shape(self) -> tuple[int, ...]:
        """The shape of one face crop as the model takes it: (48, 48) grey or (S, S, 3) RGB."""
        return (self.size, self.size, 3) if self.colour else (self.size, self.size)

    @classmethod
    def from_metadata(cls, meta: dict, path: str | Path = "", name: str | None = None) -> ModelSpec:
        """The spec of a model from its ferkit metadata; raises :class:`SpecError` naming the file and the field."""
        from ferkit.runtime import preprocess
        from ferkit.runtime.crop import FRAMINGS

        where = str(path) or "model"
        if not isinstance(meta, dict):
            raise SpecError(f"{where}: metadata is not a JSON object")
        labels = meta.get("labels")
        if not isinstance(labels, list) or not labels or any(lab not in EMOTIONS for lab in labels) \
                or len(set(labels)) != len(labels):
            raise SpecError(f"{where}: labels must be distinct names out of {', '.join(EMOTIONS)}; got {labels!r}")
        size = meta.get("input_size", [48, 48])
        if not (isinstance(size, list) and len(size) == 2 and size[0] == size[1] and isinstance(size[0], int)
                and 16 <= size[0] <= 512):
            raise SpecError(f"{where}: input_size must be [S, S] with 16 <= S <= 512; got {size!r}")
        channels = meta.get("channels", 1)
        if channels not in (1, 3):
            raise SpecError(f"{where}: channels must be 1 (grey) or 3 (RGB); got {channels!r}")
        norm = meta.get("normalization")
        try:
            mean, std = float(norm["mean"]), float(norm["std"])
        except (TypeError, KeyError, ValueError):
            raise SpecError(f"{where}: normalization must hold numbers mean and std; got {norm!r}") from None
        if not std > 0:
            raise SpecError(f"{where}: normalization std must be > 0; got {std}")
        framing = meta.get("framing", "box") or "box"
        if framing not in FRAMINGS:
            raise SpecError(f"{where}: unknown framing {framing!r}; expected one of {', '.join(FRAMINGS)}")
        try:
            prep = preprocess.of(meta)
        except ValueError as exc:
            raise SpecError(f"{where}: {exc}") from None
        if channels == 3 and prep is not None and prep.get("name", "none") != "none":
            raise SpecError(f"{where}: preprocessing {prep['name']} is for grey models; this one takes RGB")
        temperature = float(meta.get("temperature", 1.0))
        if not temperature > 0:
            raise SpecError(f"{where}: temperature must be > 0; got {temperature}")
        return cls(name=name or meta.get("name") or Path(str(path)).stem, labels=tuple(labels), size=size[0],
                   channels=channels, mean=mean, std=std, framing=framing, preprocessing=prep,
                   tta=bool(meta.get("tta", False)), temperature=temperature,
                   precision=meta.get("precision", "fp32"), arch=meta.get("arch", ""), path=str(path),
                   metadata=json.loads(json.dumps(meta)))

    def frame(self):
        """The :class:`ferkit.runtime.crop.FerFrame` the model's faces are cropped with."""
        from ferkit.runtime.crop import fitted_frames

        return fitted_frames()[self.framing]

    def crop(self, image: np.ndarray, face) -> np.ndarray:
        """The crop of a detected ``face`` (:class:`ferkit.runtime.detect.Face`) in an RGB or grey image, as the model takes
        it: :attr:`face_shape` uint8, framed with the model's framing."""
        from ferkit.runtime.crop import crop_face

        return crop_face(image, face, self.frame(), size=self.size, colour=self.colour)

    def whole(self, image: np.ndarray) -> np.ndarray:
        """An image that is already one face crop, resized to :attr:`face_shape` (``--no-detect``, ``classify``)."""
        from ferkit.runtime.crop import whole_face

        return whole_face(image, self.size, self.colour)

    def empty(self) -> np.ndarray:
        """No faces: a (0, *face_shape) uint8 array."""
        return np.zeros((0,) + self.face_shape, np.uint8)

    def prepare(self, faces: np.ndarray) -> np.ndarray:
        """Face crops -> uint8 (N, *face_shape) as the network's input before normalisation: levels as
        :func:`ferkit.core.images.to_levels` reads them, a 48x48 grey face enlarged for a larger model
        (:func:`as_model_input`), then the model's preprocessing. ``faces``: (N, *face_shape), one face, or (N, 48, 48)
        grey faces. Raises ValueError for another shape."""
        from ferkit.runtime import preprocess
        from ferkit.core.images import to_levels

        faces = np.asarray(faces)
        if faces.shape == self.face_shape or faces.shape == (48, 48):
            faces = faces[None]
        enlarge = faces.shape[1:] != self.face_shape and faces.ndim == 3 and faces.shape[1:] == (48, 48)
        if faces.shape[1:] != self.face_shape and not enlarge:
            if self.face_shape == (48, 48):
                raise ValueError(f"faces must be (N, 48, 48) grey images, got shape {faces.shape}")
            raise ValueError(f"faces must be (N, {', '.join(map(str, self.face_shape))}) "
                             f"{'RGB' if self.colour else 'grey'} crops for {self.name}, or (N, 48, 48) grey "
                             f"faces; got shape {faces.shape}")
        faces = to_levels(faces, "faces")  # once, before any resize
        if enlarge:
            faces = as_model_input(faces, self.size, self.colour)
        return faces if self.colour else preprocess.apply(faces, self.preprocessing)

    def network_input(self, faces: np.ndarray) -> np.ndarray:
        """Face crops -> the network's float32 input (N, C, S, S): :meth:`prepare`, then the model's normalisation."""
        x = (self.prepare(faces).astype(np.float32) / 255.0 - self.mean) / self.std
        return np.ascontiguousarray(x[:, None] if not self.colour else x.transpose(0, 3, 1, 2))


def as_model_input(faces: np.ndarray, size: int, colour: bool) -> np.ndarray:
    """48x48 grey faces (N, 48, 48) uint8 as a model of another input takes them: (N, size, size), or
    (N, size, size, 3) with ``colour`` (grey replicated), resized as :func:`ferkit.runtime.crop.whole_face` resizes a face
    crop at run time (bilinear when enlarging). Training converts FER2013 the same way."""
    from ferkit.runtime.crop import whole_face

    if (size, colour) == (48, False):
        return faces
    out = np.empty((len(faces), size, size) + ((3,) if colour else ()), np.uint8)
    for i, face in enumerate(faces):
        out[i] = whole_face(face, size, colour)
    return out


def resolve_spec(model: str | Path | None = None) -> ModelSpec:
    """The spec of a shipped model name (None: the default), an .onnx or .safetensors file, or a model folder.
    An ensemble's spec is its first member's (members must agree; :class:`ferkit.runtime.classifier.Classifier` checks)."""
    from ferkit.weights import is_ensemble, read_ensemble, read_metadata, resolve

    path = resolve(model, "onnx")
    if is_ensemble(path):
        first = read_ensemble(path)["members"][0]["model"]
        return resolve_spec(first)
    return ModelSpec.from_metadata(read_metadata(path), path)


__all__ = ["ModelSpec", "SpecError", "as_model_input", "resolve_spec"]
