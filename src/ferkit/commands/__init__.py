"""The ``ferkit`` commands: parsing and printing only, each calling one public function of the module that does the
work; :mod:`ferkit.cli` puts them on one Typer app. One module per group, named after what it runs:

- ``predict.py``: ``classify``, ``predict`` (:mod:`ferkit.predict`); ``video.py``: ``video`` (:mod:`ferkit.video`);
  ``serve.py``: ``serve`` (:mod:`ferkit.serve`);
- ``training.py``: the commands that make a model: ``train``, ``finetune``, ``calibrate``, ``export``, ``ensemble``
  (:mod:`ferkit.train`, :mod:`ferkit.adapt`, :mod:`ferkit.analysis`);
- ``analysis.py``: the commands that look at models and data: ``evaluate``, ``visualize``, ``models``, ``summary``,
  ``data info``, ``data pack`` (:mod:`ferkit.analysis`, :mod:`ferkit.data`, :mod:`ferkit.models`);
- ``options.py``: the options and checks several commands share.
"""
