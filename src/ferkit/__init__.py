"""ferkit: facial expression recognition for the 7 FER2013 emotions.

>>> from ferkit import Classifier, EMOTIONS
>>> clf = Classifier()                     # shipped default model, onnxruntime, no PyTorch
>>> probs = clf.predict_proba(faces)       # doctest: +SKIP   (N, 48, 48) uint8 -> (N, 7)

Training, ``create_model`` and ``load_model`` (PyTorch modules) need ``pip install 'ferkit[train]'``.
"""

from __future__ import annotations

import sys as _sys

from ferkit import architecture as _architecture
from ferkit.core.labels import EMOTIONS

# The one thing importing ferkit does besides defining names: an import of a moved module's old path (ferkit.recognize)
# then fails naming the new one. The finder is asked last, only about names nothing else found.
if _architecture.MovedModuleFinder not in _sys.meta_path:
    _sys.meta_path.append(_architecture.MovedModuleFinder)

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "Classifier", "Recognizer", "create_model", "list_models", "load_model", "load_fer2013", "finetune",
           "to_pandas"]


def __getattr__(name: str):
    # Lazy: `import ferkit` must not import onnxruntime, OpenCV or PyTorch.
    if name == "Classifier":
        from ferkit.runtime.classifier import Classifier

        return Classifier
    if name == "Recognizer":
        from ferkit.pipeline.recognize import Recognizer

        return Recognizer
    if name in ("create_model", "list_models", "load_model"):
        from ferkit import models

        return getattr(models, name)
    if name == "finetune":
        from ferkit.adapt import finetune

        return finetune
    if name == "to_pandas":
        from ferkit.pipeline.outputs import to_pandas

        return to_pandas
    if name == "load_fer2013":
        from ferkit.data.fer2013 import load_fer2013

        return load_fer2013
    if name in _architecture.MOVED and name not in _architecture.PACKAGES:  # `from ferkit import recognize`:
        # Python's from-import would hide the finder's message
        raise ImportError(f"cannot import name {name!r} from 'ferkit': the module {_architecture.moved_to(name)}", name="ferkit")
    raise AttributeError(f"module 'ferkit' has no attribute {name!r}")
