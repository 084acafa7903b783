"""``ferkit visualize VIEW``: each named view of a model, a data set or a run, drawn from the inputs it needs
(figures from :mod:`ferkit.analysis.visualize`) and saved."""

from __future__ import annotations

import json
from pathlib import Path

VIEWS = ("samples", "kernels", "feature-maps", "saliency", "confusion", "curves", "report")


def face_for(image: str | Path | None, spec=None):
    """A face as ``spec`` (a :class:`ferkit.runtime.spec.ModelSpec`; None: 48x48 grey) takes it: the bundled sample face, or the
    largest face of a photo cropped as `ferkit predict` crops it for that model."""
    from ferkit.pipeline.face_images import SAMPLE_FACE
    from ferkit.runtime.crop import largest_face_crop

    return largest_face_crop(image or SAMPLE_FACE, spec=spec)


def layer_list(model: str | None = None) -> list[str]:
    """The names of ``model``'s layers (shipped name or file; None: the default model), as ``--layer`` takes them."""
    from ferkit.analysis import visualize as viz
    from ferkit.models import load_model

    return viz.layer_names(load_model(model))


def render(view: str, out: str | Path | None, *, model: str | None = None, image: str | Path | None = None,
           data: str | Path | None = None, split: str | None = None, layer: str | None = None,
           run: str | Path | None = None, report: str | Path | None = None, emotion: str | None = None) -> Path:
    """Draw ``view`` (one of :data:`VIEWS`) and write it to ``out`` (a PNG; ``report``: one self-contained HTML
    page); returns the path written.

    ``image`` (feature-maps, saliency): a face or a photo (its largest face); default: the bundled sample face.
    ``data`` (samples, confusion, report, saliency of its first 12 faces), ``split`` of it; ``run`` (curves, report):
    a run folder; ``report`` (confusion): a `ferkit evaluate --json` file. Raises ValueError for an unknown view
    or a missing input (the message names the option), and what reading the inputs raises (DataError,
    WeightsError, ImageError, FileNotFoundError, KeyError).
    """
    from ferkit.analysis import visualize as viz
    from ferkit.data.fer2013 import canonical_split, load_fer2013
    from ferkit.core.labels import EMOTIONS

    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; expected one of {', '.join(VIEWS)}")
    net = None
    if view in ("kernels", "feature-maps", "saliency", "report"):
        from ferkit.models import load_model

        net = load_model(model)
    if out is None:
        raise ValueError("--out FILE.png is required")
    out = Path(out)
    loaded = load_fer2013(data) if data is not None else None
    if loaded is not None and split:
        loaded = loaded.split(canonical_split(split))
    label = f"{getattr(net, 'ferkit_meta', {}).get('name', model or '')}: " if net is not None else ""
    if view == "samples":
        if loaded is None:
            raise ValueError("samples needs --data")
        fig = viz.samples(loaded)
    elif view == "kernels":
        fig = viz.kernels(net, label)
    elif view == "feature-maps":
        fig = viz.feature_maps(net, face_for(image, _spec(net)), layer, label)
    elif view == "report":
        if loaded is None:
            raise ValueError("report needs --data (and --split, e.g. PublicTest)")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(viz.report(net, loaded, model_name=model, run=run))  # numbers of `net`, the drawn one
        return out
    elif view == "saliency":
        faces = [face_for(image, _spec(net))] if loaded is None else list(loaded.images[:12])
        fig = viz.saliency(net, faces, EMOTIONS.index(emotion) if emotion else None, label)
    elif view == "confusion":
        if report is not None:
            rep = json.loads(Path(report).read_text())
        elif loaded is not None:
            from ferkit.analysis.evaluate import compute_metrics, load_predictor

            predict, meta = load_predictor(model)
            rep = {**compute_metrics(predict(loaded.images), loaded.labels), "model": meta.get("name", model),
                   "split": split or "all rows"}
        else:
            raise ValueError("confusion needs --report or --data")
        fig = viz.confusion(rep)
    else:
        if run is None:
            raise ValueError("curves needs --run RUN_FOLDER")
        fig = viz.curves(run)
    return viz.save(fig, out)


def _spec(net):
    from ferkit.runtime.spec import ModelSpec

    return ModelSpec.from_metadata(net.ferkit_meta)
