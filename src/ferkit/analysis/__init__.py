"""Measuring and finishing models with data: evaluation, calibration, export to ONNX, ensembles, figures.

- :mod:`ferkit.analysis.evaluate`: accuracy, per-class metrics, confusion, calibration (ECE), 2nd guesses.
- :mod:`ferkit.analysis.photos`: the same on labelled real photos, detection included.
- :mod:`ferkit.analysis.calibrate`: temperature scaling on held-out faces.
- :mod:`ferkit.analysis.export`: a trained model to ONNX with its metadata; int8 model folders.
- :mod:`ferkit.analysis.ensemble`: several shipped models averaged in log space.
- :mod:`ferkit.analysis.visualize`, :mod:`ferkit.analysis.views`: the paper's figures (kernels, feature maps,
  saliency, confusion, curves, report).
- :mod:`ferkit.analysis.catalog`: what ``ferkit models`` lists.
"""
