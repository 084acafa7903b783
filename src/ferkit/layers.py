"""ferkit's architecture as data: the layers, lowest first, and the folders (or top-level modules) each one is.

A module imports only from its own layer or a lower one: ``tests/test_imports.py`` checks every import, lazy ones
included, that every top-level module is one of the applications listed here, and that every folder is a layer;
``tools/architecture.py`` draws the picture in docs/architecture.md from this map and the import graph.

The folders are the layers: ``ferkit/runtime/detect.py`` is in the runtime layer because it is in ``runtime/``.
The top level holds only the applications a user runs (``ferkit.predict``, ``ferkit.video``, ``ferkit.serve``,
``ferkit.batch``, ``ferkit.adapt``, the CLI) and the package's lazy exports.
"""

from __future__ import annotations

LAYERS: dict[str, tuple[str, ...]] = {
    # what every layer uses: labels, reading images, provenance, timers, softmax/TTA; the shipped weights' registry
    "core": ("core", "weights"),
    # PyTorch networks and their registry (training and export only; inference never imports them)
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
    "apps": ("predict", "video", "serve", "service", "batch", "adapt", "cli", "commands", "layers", "train.__main__",
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


__all__ = ["LAYERS", "layer_of"]
