"""Running shipped networks on faces with onnxruntime: the face detector, alignment and cropping as a model's spec
says, the expression classifier, the face descriptor. No PyTorch, except to turn a ``.safetensors`` file into ONNX
(:mod:`ferkit.runtime.onnx_io`, lazily).

- :mod:`ferkit.runtime.detect`: CenterFace boxes, scores and 5 landmarks; upright landmarks for tilted faces.
- :mod:`ferkit.runtime.pose`: an approximate head pose (yaw, pitch, roll) from the 5 landmarks.
- :mod:`ferkit.runtime.crop`: a detected face cropped and aligned the way a model was trained (framing, template).
- :mod:`ferkit.runtime.preprocess`: the per-face transform a model declares (none, equalize_hist, CLAHE).
- :mod:`ferkit.runtime.spec`: :class:`~ferkit.runtime.spec.ModelSpec`, a model name or path resolved once.
- :mod:`ferkit.runtime.onnx_io`: ONNX files: loading with validation, metadata, int8 quantization.
- :mod:`ferkit.runtime.classifier`: :class:`~ferkit.runtime.classifier.Classifier`, probabilities for face crops.
- :mod:`ferkit.runtime.identity`: a face descriptor; faces and video tracks grouped into persons.

``from ferkit.runtime import Classifier`` keeps working (``ferkit.runtime`` was the classifier's module
before the subpackage layout; CHANGELOG.md).
"""

from __future__ import annotations

_MOVED = {"Classifier": "classifier", "as_grey_levels": "classifier"}  # ferkit.runtime's names before it was a folder
__all__ = list(_MOVED)


def __getattr__(name: str):
    if name in _MOVED:
        from importlib import import_module

        return getattr(import_module(f"ferkit.runtime.{_MOVED[name]}"), name)
    raise AttributeError(f"module 'ferkit.runtime' has no attribute {name!r}")
