"""What every layer uses, with no ferkit dependency but each other: the label set, reading images, provenance
records, timers, and the softmax/TTA arithmetic shared by the runtimes, training and evaluation.

- :mod:`ferkit.core.labels`: the 7 FER2013 emotions, their order and aliases.
- :mod:`ferkit.core.images`: reading a photo as ``ferkit predict`` does (EXIF orientation, 16-bit, alpha), ``ImageError``.
- :mod:`ferkit.core.inference`: logits of one or several views to probabilities (NumPy; PyTorch helpers lazily).
- :mod:`ferkit.core.provenance`: the command line recorded beside every file ferkit makes.
- :mod:`ferkit.core.profiling`: per-stage timers for ``ferkit video --profile``.

The shipped model files and their registry are the sibling package :mod:`ferkit.weights`, in the same layer.
"""
