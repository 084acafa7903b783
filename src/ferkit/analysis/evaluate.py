"""Metrics and reports: accuracy, top-2, per-class precision/recall/F1, confusion, the 2nd-guess table.

Everything here works on predicted probabilities (N, 7) and true labels (N,), so it serves any model:
PyTorch, ONNX, or hand-made predictions in the tests. Metrics come from scikit-learn.
"""

from __future__ import annotations

import numpy as np

from ferkit.core.labels import EMOTIONS, NUM_CLASSES

# The confused pairs the paper examined, as (true, predicted) label pairs in both directions.
SECOND_GUESS_PAIRS = (("sad", "angry"), ("angry", "sad"), ("fear", "surprise"), ("surprise", "fear"))


def second_guess_table(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Of the errors true->predicted, the share whose 2nd-highest probability is the true class.

    Returns ``{"pairs": [{"true", "predicted", "errors", "second_right", "share"}...],
    "overall": {"errors", "second_right", "share"}}``; ``share`` is None when there are no errors.
    """
    order = np.argsort(-probs, axis=1)
    first, second = order[:, 0], order[:, 1]
    wrong = first != labels
    second_right = wrong & (second == labels)

    def row(mask: np.ndarray) -> dict:
        n, k = int(mask.sum()), int((mask & second_right).sum())
        return {"errors": n, "second_right": k, "share": (k / n) if n else None}

    pairs = []
    for true, pred in SECOND_GUESS_PAIRS:
        t, p = EMOTIONS.index(true), EMOTIONS.index(pred)
        pairs.append({"true": true, "predicted": pred, **row(wrong & (labels == t) & (first == p))})
    return {"pairs": pairs, "overall": row(wrong)}


def need_metrics() -> None:
    """Raise ImportError (one line, with the install hint) when scikit-learn, which computes the metrics, is
    missing: called before any detection or inference so a core install fails in a second, not after the work."""
    try:
        import sklearn.metrics  # noqa: F401
    except ImportError:
        raise ImportError("metrics need scikit-learn: pip install 'ferkit[train]'") from None


def compute_metrics(probs: np.ndarray, labels: np.ndarray, found: np.ndarray | None = None) -> dict:
    """Accuracy, top-2 accuracy, per-class precision/recall/F1/support, confusion (rows = true), calibration
    (ECE over 15 bins, NLL).

    ``found`` (photos: a bool per labelled face, False where no face was detected) makes the report end to
    end: accuracy, top-2, recall, precision and F1 count a face that was not found as wrong; ``found``,
    ``not_found`` (per class) and ``found_accuracy`` (the classifier alone, on the faces found) are added.
    The confusion matrix, calibration and the 2nd-guess table are over the faces found.
    """
    if found is not None:
        return _end_to_end_metrics(np.asarray(probs, np.float64), np.asarray(labels), np.asarray(found, bool))
    from ferkit.analysis.calibrate import expected_calibration_error, nll

    need_metrics()
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, top_k_accuracy_score

    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    classes = list(range(NUM_CLASSES))
    pred = probs.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(labels, pred, labels=classes, zero_division=0)
    return {
        "n": int(len(labels)),
        "accuracy": float(accuracy_score(labels, pred)),
        "top2_accuracy": float(top_k_accuracy_score(labels, probs, k=2, labels=classes)),
        "per_class": {
            EMOTIONS[c]: {"precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]),
                          "support": int(support[c])}
            for c in classes
        },
        "macro_f1": float(f1.mean()),
        "ece": expected_calibration_error(probs, labels),
        "nll": nll(probs, labels),
        "confusion": confusion_matrix(labels, pred, labels=classes).tolist(),
        "second_guess": second_guess_table(probs, labels),
    }


def _end_to_end_metrics(probs: np.ndarray, labels: np.ndarray, found: np.ndarray) -> dict:
    report = compute_metrics(probs[found], labels[found]) if found.any() else None
    pred = np.where(found, probs.argmax(axis=1), -1)
    top2 = found & (np.argsort(-probs, axis=1)[:, :2] == labels[:, None]).any(axis=1)
    per_class, f1s = {}, []
    for c, name in enumerate(EMOTIONS):
        tp = int(((pred == c) & (labels == c)).sum())
        n_pred, n_true = int((pred == c).sum()), int((labels == c).sum())
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_true if n_true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": n_true}
    empty = np.zeros((NUM_CLASSES, NUM_CLASSES), int).tolist()
    return {
        "n": int(len(labels)),
        "found": int(found.sum()),
        "not_found": {name: int(((labels == c) & ~found).sum()) for c, name in enumerate(EMOTIONS)},
        "accuracy": float((pred == labels).mean()) if len(labels) else 0.0,
        "found_accuracy": report["accuracy"] if report else None,
        "top2_accuracy": float(top2.mean()) if len(labels) else 0.0,
        "per_class": per_class,
        "macro_f1": float(np.mean(f1s)),
        "ece": report["ece"] if report else None,
        "nll": report["nll"] if report else None,
        "confusion": report["confusion"] if report else empty,
        "second_guess": report["second_guess"] if report else second_guess_table(probs[:0], labels[:0]),
    }


def format_report(report: dict) -> str:
    """The human-readable table ``ferkit evaluate`` prints."""
    lines = [f"model: {report.get('model', '?')}   data: {report.get('data', '?')}   split: {report.get('split', '?')}"
             f"   n: {report['n']}",
             f"accuracy: {report['accuracy'] * 100:.2f}%   top-2 accuracy: {report['top2_accuracy'] * 100:.2f}%"
             f"   macro F1: {report['macro_f1']:.3f}"]
    if "found" in report:
        fa = report["found_accuracy"]
        lines.insert(1, f"faces found: {report['found']} / {report['n']} (a face not found counts as wrong)   "
                        f"classifier alone on the faces found: {'-' if fa is None else f'{fa * 100:.2f}%'}")
    if report.get("ece") is not None:
        lines.append(f"calibration: ECE {report['ece'] * 100:.2f}% (15 bins)   NLL {report['nll']:.4f}"
                     + ("   (faces found)" if "found" in report else ""))
    if "train_accuracy" in report:
        lines.append(f"train accuracy: {report['train_accuracy'] * 100:.2f}%   overfit ratio (test/train): "
                     f"{report['overfit_ratio']:.4f}")
    lines += ["", f"{'class':10s} {'precision':>9s} {'recall':>7s} {'F1':>6s} {'support':>8s}"]
    for name, m in report["per_class"].items():
        lines.append(f"{name:10s} {m['precision']:9.3f} {m['recall']:7.3f} {m['f1']:6.3f} {m['support']:8d}")
    lost = report.get("not_found")
    lines += ["", "confusion (rows: true, columns: predicted)" + (", faces found; last column: not found" if lost else ""),
              " " * 10 + "".join(f"{e[:7]:>8s}" for e in EMOTIONS) + (f"{'missed':>8s}" if lost else "")]
    for name, row in zip(EMOTIONS, report["confusion"]):
        lines.append(f"{name:10s}" + "".join(f"{v:8d}" for v in row) + (f"{lost[name]:8d}" if lost else ""))
    lines += ["", "2nd guess right among errors (true -> predicted)"]
    sg = report["second_guess"]
    for p in sg["pairs"] + [{"true": "all", "predicted": "any", **sg["overall"]}]:
        share = "-" if p["share"] is None else f"{p['share'] * 100:.1f}%"
        lines.append(f"{p['true']:>8s} -> {p['predicted']:8s} {p['second_right']:5d} / {p['errors']:5d}  {share:>6s}")
    return "\n".join(lines)


def load_predictor(model: str | None, *, tta: bool | None = None):
    """A function face crops -> probabilities (N, 7), and the model's metadata: the model's own crops
    (:attr:`ferkit.runtime.spec.ModelSpec.face_shape`) or (N, 48, 48) grey faces, which any model takes.

    A shipped model name (``None`` = the default) or an ``.onnx`` file runs on onnxruntime, exactly as
    ``ferkit classify``/``predict`` run it; a ``.safetensors`` file (e.g. a run's model.safetensors)
    runs on PyTorch in fp32. ``tta`` overrides the model's own flip test-time augmentation.
    """
    if model is not None and str(model).endswith(".safetensors"):
        from ferkit.models import load_model

        net = load_model(model)
        return net_predictor(net, tta=tta), net.ferkit_meta
    from ferkit.runtime.classifier import Classifier

    clf = Classifier(model, threads=0, tta=tta)
    return clf.predict_proba, clf.metadata


def net_predictor(net, *, tta: bool | None = None):
    """A function face crops -> probabilities (N, 7) of a loaded PyTorch network, read through its spec (its
    ``ferkit_meta``: input, preprocessing, normalisation, flip TTA, temperature; :class:`ferkit.runtime.spec.ModelSpec`), in
    fp32. Faces as :meth:`ferkit.runtime.spec.ModelSpec.prepare` takes them: the model's crops, or (N, 48, 48) grey."""
    from ferkit.core.inference import predict_proba
    from ferkit.runtime.spec import ModelSpec

    spec = ModelSpec.from_metadata(net.ferkit_meta)
    use_tta = spec.tta if tta is None else tta
    return lambda faces: predict_proba(net, spec.prepare(faces), spec.mean, spec.std, tta=use_tta,
                                       temperature=spec.temperature)


def model_spec(model: str | None):
    """The :class:`ferkit.runtime.spec.ModelSpec` of ``model`` (a shipped name, None for the default, or a file), for cropping
    photo faces as that model expects: its framing, input size and channels."""
    if model is not None and str(model).endswith(".safetensors"):
        from ferkit.runtime.spec import ModelSpec
        from ferkit.weights import read_metadata

        return ModelSpec.from_metadata(read_metadata(model), model)
    from ferkit.runtime.classifier import Classifier

    return Classifier(model).spec


def model_framing(model: str | None) -> str:
    """The face framing ``model`` was trained on (its metadata's ``framing``: ``box`` or ``align``; ``box`` for
    models that do not say), for cropping photo faces as that model expects (see :mod:`ferkit.runtime.crop`)."""
    return model_spec(model).framing


def evaluate_model(model: str | None, data, split: str, *, train_accuracy: bool = False, tta: bool | None = None,
                   labels: str = "fer2013", ferplus=None) -> dict:
    """The full report of ``ferkit evaluate`` for one split of a loaded :class:`~ferkit.data.fer2013.FerData`, against
    ``labels`` (``fer2013``, or ``ferplus-majority`` read from the FER+ file beside the data, see
    :func:`ferkit.data.ferplus.relabel`)."""
    from ferkit.data.ferplus import relabel

    need_metrics()
    if labels not in ("fer2013", "ferplus-majority"):
        raise ValueError(f"evaluate against fer2013 or ferplus-majority labels, not {labels!r} (votes and mixed "
                         "targets are distributions, not labels)")
    data = relabel(data, labels, ferplus)
    subset = data.split(split)
    predict, meta = load_predictor(model, tta=tta)
    report = compute_metrics(predict(subset.images), subset.labels)
    if train_accuracy:
        train = data.split("Training")
        report["train_accuracy"] = float((predict(train.images).argmax(1) == train.labels).mean())
        report["overfit_ratio"] = report["accuracy"] / report["train_accuracy"]
    used_tta = bool(meta.get("tta", False)) if tta is None else tta
    if not data.has_splits():  # a CSV without Usage or a flat folder: every row was scored, say so
        split = "all rows (no split names)"
    return {"model": meta.get("name", str(model)), "data": data.source, "split": split, "labels": labels,
            "tta": used_tta, **report}
