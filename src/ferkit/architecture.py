"""ferkit's architecture as data: the layers, lowest first, and the folders (or top-level modules) each one is.

A module imports only from its own layer or a lower one: ``tests/test_imports.py`` checks every import, lazy ones
included, that every top-level module is one of the applications listed here, and that every folder is a layer;
``tools/architecture.py`` draws the picture in docs/architecture.md from this map and the import graph.

The folders are the layers: ``ferkit/runtime/detect.py`` is in the runtime layer because it is in ``runtime/``.
The top level holds only the applications a user runs (``ferkit.predict``, ``ferkit.video``, ``ferkit.serve`` and
the ``ferkit.service`` it runs, ``ferkit.batch``, ``ferkit.adapt``, the CLI), this map and the package's lazy
exports; one module sits outside its folder's layer: ``ferkit/train/__main__.py`` (``python -m ferkit.train``) is the
CLI's, an application.

:data:`MOVED` is where each module of the flat layout went (CHANGELOG.md), and :class:`MovedModuleFinder` makes an
import of an old path fail with the new one in its message.
"""

from __future__ import annotations

from ferkit.data import MOVED_BESIDE

LAYERS: dict[str, tuple[str, ...]] = {
    # what every layer uses: labels, reading images, provenance, timers, softmax/TTA; the shipped weights' registry
    "core": ("core", "weights"),
    # PyTorch networks and their registry: training, export and figures; inference on ONNX files never imports them
    # (runtime/onnx_io.py does, lazily, only to turn a .safetensors file into ONNX)
    "models": ("models",),
    # onnxruntime: the face detector, head pose, cropping a face as a model's spec says, the classifier, descriptors
    "runtime": ("runtime",),
    # photos and video end to end: decoding, recognising, tracking, writing results, drawing, charts
    "pipeline": ("pipeline",),
    # labelled data: FER2013, FER+ labels, photo sets, face-crop folders, augmentation, duplicates
    "data": ("data",),
    # working on models with data: evaluation, calibration, export, ensembles, figures
    "analysis": ("analysis",),
    # training (PyTorch, torchrun)
    "train": ("train",),
    # what a user runs: photos, video, the web service, Ray, fine-tuning, the CLI, the package's lazy exports
    "apps": ("predict", "video", "serve", "service", "batch", "adapt", "cli", "commands", "architecture", "train.__main__",
             ""),
}


def layer_of(module: str) -> int | None:
    """The rank of ``module``'s layer (0 the lowest), from the longest entry of :data:`LAYERS` that names it or a
    package above it; ``None`` for a module no entry covers.

    >>> layer_of("ferkit.runtime.detect") == list(LAYERS).index("runtime")
    True
    """
    parts = module.split(".")[1:]  # without "ferkit"
    best, best_len = None, -1
    for rank, entries in enumerate(LAYERS.values()):
        for entry in entries:
            prefix = entry.split(".") if entry else []
            if parts[:len(prefix)] == prefix and len(prefix) > best_len:
                best, best_len = rank, len(prefix)
    # the package itself ("") covers only "ferkit": a new top-level module must be placed
    return best if best_len > 0 or not parts else None


# The flat layout's modules -> their folders (issue 33). ferkit.runtime and ferkit.data are folders now and still
# serve their old modules' public names (see their __init__); the applications did not move.
MOVED: dict[str, str] = {
    **{m: f"core.{m}" for m in ("labels", "images", "provenance", "profiling", "inference")},
    **{m: f"runtime.{m}" for m in ("onnx_io", "detect", "crop", "spec", "identity", "preprocess", "pose")},
    "runtime": "runtime.classifier",
    **{m: f"pipeline.{m}" for m in ("decode", "recognize", "tracking", "annotate", "outputs", "charts")},
    "classify": "pipeline.face_images",  # face image files read whole (`ferkit classify`); runtime.classifier classifies
    "data": "data.fer2013",
    **{m: f"data.{m}" for m in ("ferplus", "photoset", "sources", "datainfo", "augment", "dedupe")},
    **{m: f"analysis.{m}" for m in ("evaluate", "calibrate", "export", "ensemble", "photos", "visualize", "views",
                                    "catalog")},
    "layers": "architecture",
    "commands.inference": "commands.predict",  # classify and predict; serve went to commands.serve
}
PACKAGES = ("data", "runtime")  # old modules whose names are folders now; they serve their old public names

# Names an old module held that now live in another module (``from ferkit.data import relabel`` still works).
MOVED_NAMES: dict[str, dict[str, str]] = {"data": MOVED_BESIDE}


class MovedModuleFinder:
    """A last-resort import finder: ``import ferkit.recognize`` (a path of the flat layout) fails with
    ``ModuleNotFoundError: No module named 'ferkit.recognize': it moved to 'ferkit.pipeline.recognize' ...``
    instead of the bare message. Python asks it only after every other finder found nothing, so it changes only
    what a failing import of an old path says (and ``importlib.util.find_spec`` of an old path raises that error
    instead of returning ``None``); ``import ferkit`` appends it to ``sys.meta_path`` once. ``from ferkit import
    recognize`` is answered by ``ferkit.__getattr__`` the same way.
    """

    @staticmethod
    def find_spec(name: str, path=None, target=None):
        old = name[len("ferkit."):] if name.startswith("ferkit.") else None
        if old in MOVED:
            raise ModuleNotFoundError(f"No module named {name!r}: it {moved_to(old)}", name=name)
        return None


def moved_to(old: str) -> str:
    """How the errors for an old module path end: ``moved to 'ferkit.NEW' (...)``."""
    return (f"moved to 'ferkit.{MOVED[old]}' (ferkit's modules moved into folders named after their layer; "
            f"CHANGELOG.md lists every move)")


__all__ = ["LAYERS", "MOVED", "MOVED_NAMES", "PACKAGES", "MovedModuleFinder", "layer_of", "moved_to"]
