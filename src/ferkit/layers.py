"""ferkit's architecture as data: every module's layer, lowest first. A module imports only from its own layer or a
lower one (``tests/test_imports.py`` checks every import, lazy ones included, and that every module has a layer);
``tools/architecture.py`` draws the picture in docs/architecture.md from this map and the import graph.

The folders do not show these layers yet (issue 33 moves the modules into subpackages named after them); until then
this map is the architecture, and the test keeps it true.
"""

from __future__ import annotations

LAYERS: dict[str, tuple[str, ...]] = {
    # plain helpers with no ferkit dependency but each other: labels, images, weight files, records, drawing
    "base": ("labels", "images", "weights", "provenance", "profiling", "preprocess", "pose", "inference", "outputs",
             "augment", "dedupe", "charts", "annotate"),
    # PyTorch networks and their registry (training and export only; inference never imports them)
    "models": ("models", "models.faceres", "models.layers", "models.resnet", "models.seed", "models.summary",
               "models.vgg"),
    # onnxruntime: the face detector, cropping a face as a model's spec says, the classifier, the face descriptor
    "runtime": ("onnx_io", "detect", "crop", "spec", "runtime", "identity"),
    # photos and video end to end: decoding, recognising, tracking, writing results
    "pipeline": ("decode", "recognize", "tracking", "classify", "video", "predict"),
    # labelled data: FER2013, FER+ labels, photo sets, face-crop folders (re-framed through the runtime's detector)
    "data": ("data", "ferplus", "photoset", "sources", "datainfo"),
    # working on models with data: evaluation, calibration, export, ensembles, fine-tuning, figures
    "analysis": ("evaluate", "calibrate", "export", "ensemble", "photos", "visualize", "views", "catalog", "adapt"),
    # training (PyTorch, torchrun)
    "train": ("train", "train.checkpoint", "train.config", "train.dataset", "train.distributed", "train.parts",
              "train.recipe", "train.results"),
    # what a user runs: the CLI, the web service, Ray, the package's lazy exports
    "apps": ("cli", "commands", "commands.analysis", "commands.inference", "commands.options", "commands.training",
             "commands.video", "serve", "service", "batch", "train.__main__", "layers", ""),
}


def layer_of() -> dict[str, int]:
    """``{"ferkit.<module>": rank}``, rank 0 the lowest layer (``"ferkit"``: the package itself)."""
    return {("ferkit." + m).rstrip("."): rank for rank, modules in enumerate(LAYERS.values()) for m in modules}


__all__ = ["LAYERS", "layer_of"]
