"""Temperature scaling (Guo et al. 2017) and expected calibration error.

A network trained with cross-entropy is usually over- or under-confident; dividing its logits by one
fitted temperature T fixes most of that without changing a single prediction (argmax is unchanged).
T is fitted on faces the model never trained on -- the slice of Training a run holds out -- by minimising
the negative log-likelihood of the probabilities the inference path produces (with flip TTA: the mean of
the two views' softmaxes). ECE is the standard top-label, equal-width-bin estimate.
"""

from __future__ import annotations

import numpy as np

BINS = 15


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels."""
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """Top-label ECE: the sample-weighted mean |accuracy - confidence| over ``bins`` equal-width bins."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    if len(labels) == 0:
        return float("nan")
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    which = np.minimum((conf * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> list[dict]:
    """Per-bin confidence, accuracy and count, for a reliability diagram."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    which = np.minimum((conf * bins).astype(int), bins - 1)
    return [{"low": b / bins, "high": (b + 1) / bins, "n": int((which == b).sum()),
             "confidence": float(conf[which == b].mean()) if (which == b).any() else None,
             "accuracy": float(correct[which == b].mean()) if (which == b).any() else None}
            for b in range(bins)]


# Fewer held-out faces than this and `ferkit calibrate` refuses: one parameter fitted on a few dozen faces follows their
# noise (a run held out 14 faces and got T 0.257, which made ECE worse, 1.08% -> 4.52%; issue 31).
MIN_CALIBRATION_FACES = 50


def temperature_refusal(view_logits: np.ndarray, labels: np.ndarray, temperature: float, *,
                        min_faces: int = MIN_CALIBRATION_FACES, current: float = 1.0) -> str | None:
    """Why a fitted ``temperature`` must not be stored, or None when it may: fewer than ``min_faces`` faces, or
    it makes the ECE of the very faces it was fitted on worse than the ``current`` temperature does (NLL and ECE
    can disagree; the docs promise calibrated probabilities, so a temperature that worsens ECE is refused).
    ``view_logits`` (V, N, C), ``labels`` (N,)."""
    from ferkit.core.inference import views_to_proba

    n = len(labels)
    if n < min_faces:
        return f"only {n} held-out faces (fewer than {min_faces}): too few to fit a temperature"
    before = expected_calibration_error(views_to_proba(view_logits, current), labels)
    after = expected_calibration_error(views_to_proba(view_logits, temperature), labels)
    if after > before:
        return (f"temperature {temperature:.3f} makes the held-out faces' ECE worse ({before * 100:.2f}% -> "
                f"{after * 100:.2f}%)")
    return None


def fit_temperature(view_logits: np.ndarray, labels: np.ndarray, *, low: float = 0.05, high: float = 20.0) -> float:
    """The temperature minimising the NLL of mean-over-views softmax(logits / T); logits are (V, N, C)."""
    from scipy.optimize import minimize_scalar

    from ferkit.core.inference import views_to_proba

    view_logits = np.asarray(view_logits, dtype=np.float64)
    if view_logits.ndim == 2:
        view_logits = view_logits[None]
    if view_logits.shape[1] == 0:
        raise ValueError("no held-out faces to fit a temperature on")
    result = minimize_scalar(lambda log_t: nll(views_to_proba(view_logits, float(np.exp(log_t))), labels),
                             bounds=(np.log(low), np.log(high)), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(result.x))


def calibrate_weights(path, data, *, split: str = "PublicTest", tta: bool | None = None, log=print) -> dict:
    """Fit a temperature for a run's ``model.safetensors`` and write it into the file's metadata.

    The held-out slice is the one the run never trained on: Training rows chosen by the run's own
    ``val_fraction`` and ``seed`` (stored in the metadata), and the validation part of each face-crop folder it
    trained on (``ferkit.data.sources``; its ECE before and after is reported too). ECE and NLL on ``split`` are reported before
    and after; they are measured, never used to fit. ``tta`` sets whether inference averages in the
    mirrored face (stored in the metadata; default: keep the run's choice); the temperature is fitted for
    exactly that inference path. Returns the calibration record. Raises ValueError, writing nothing, when the
    run held out fewer than :data:`MIN_CALIBRATION_FACES` faces or the fitted temperature makes their ECE worse
    (:func:`temperature_refusal`).
    """
    from ferkit.runtime.crop import framing_of
    from ferkit.data.fer2013 import train_val_split
    from ferkit.data.ferplus import relabel
    from ferkit.models import load_model, model_tensors
    from ferkit.core.inference import predict_logits, views_to_proba
    from ferkit.weights import save_weights

    net = load_model(str(path))
    meta = dict(net.ferkit_meta)
    cfg = meta.get("config", {})
    if not cfg.get("val_fraction"):
        raise ValueError(f"{path}: the run held no slice of Training out (val_fraction 0): nothing to fit on")
    data = relabel(data, cfg.get("labels", "fer2013"), cfg.get("ferplus") or None)  # the labels it trained on
    framing = framing_of(meta).method
    if framing == "align":  # the faces as the run saw them
        from ferkit.data.fer2013 import FerData
        from ferkit.data.sources import align_fer2013

        data = FerData(align_fer2013(data.images)[0], data.labels, data.usage, data.source, data.targets)
    train_all = data.split("Training")
    _, val_idx = train_val_split(len(train_all), cfg["val_fraction"], cfg.get("seed", 0))
    from ferkit.runtime.spec import ModelSpec

    spec = ModelSpec.from_metadata(meta, path)
    tta = spec.tta if tta is None else tta

    def logits(images):  # FER2013's 48x48 faces enlarged for a larger model, the model's preprocessing (its spec)
        return predict_logits(net, spec.prepare(images), spec.mean, spec.std, tta=tta)

    parts = {"fer2013": (logits(train_all.images[val_idx]), train_all.labels[val_idx])}
    for source in cfg.get("sources", []):
        from ferkit.data.sources import load_crop_folder

        folder = load_crop_folder(source, holdout=cfg.get("holdout", 0.1), framing=framing, size=spec.size,
                                  colour=spec.colour)
        val = folder.faces.usage == "Validation"
        if val.any():
            parts[folder.name] = (logits(folder.faces.images[val]), folder.faces.labels[val])
    held_out = np.concatenate([v for v, _ in parts.values()], axis=1)
    y_held = np.concatenate([y for _, y in parts.values()])
    temperature = fit_temperature(held_out, y_held) if len(y_held) else 1.0
    refusal = temperature_refusal(held_out, y_held, temperature)
    if refusal:
        hint = ("hold out more faces: train with a larger --val-fraction or more data" if "too few" in refusal
                else "its probabilities are better calibrated as they are")
        raise ValueError(f"{path}: {refusal}; the file is left as it was ({hint})")
    fitted_on = f"{len(val_idx)} held-out Training faces (val_fraction {cfg['val_fraction']}, seed {cfg.get('seed', 0)})"
    if len(parts) > 1:
        fitted_on += "".join(f" + {len(y)} of {name}'s validation part" for name, (_, y) in list(parts.items())[1:])
    raw, scaled = views_to_proba(held_out), views_to_proba(held_out, temperature)
    record = {"temperature": temperature, "fitted_on": fitted_on, "bins": BINS, "tta": tta,
              "held_out": {"n": int(len(y_held)), "nll_before": nll(raw, y_held), "nll_after": nll(scaled, y_held),
                           "ece_before": expected_calibration_error(raw, y_held),
                           "ece_after": expected_calibration_error(scaled, y_held)}}
    for name, (v, y) in list(parts.items())[1:]:  # measured on faces the fit saw: one parameter, reported so
        record[f"{name} validation"] = {"ece_before": expected_calibration_error(views_to_proba(v), y),
                                        "ece_after": expected_calibration_error(views_to_proba(v, temperature), y)}
    try:
        test = data.split(split)
    except ValueError:
        test = None
    if test is not None and len(test):
        test_logits = logits(test.images)
        before, after = views_to_proba(test_logits), views_to_proba(test_logits, temperature)
        record[split] = {"ece_before": expected_calibration_error(before, test.labels),
                         "ece_after": expected_calibration_error(after, test.labels),
                         "nll_before": nll(before, test.labels), "nll_after": nll(after, test.labels),
                         "accuracy": float((after.argmax(1) == test.labels).mean())}
    meta["temperature"] = temperature
    meta["tta"] = tta
    if split in record:  # the accuracy users get: this inference path (TTA or not), this split
        meta["accuracy"] = {**meta.get("accuracy", {}), split: record[split]["accuracy"]}
    meta["calibration"] = record
    save_weights(path, model_tensors(net), meta)
    log(f"{path}: temperature {temperature:.4f} (fitted on {record['fitted_on']})")
    if split in record:
        r = record[split]
        log(f"{split}: ECE {r['ece_before'] * 100:.2f}% -> {r['ece_after'] * 100:.2f}%   "
            f"NLL {r['nll_before']:.4f} -> {r['nll_after']:.4f}   accuracy {r['accuracy'] * 100:.2f}% (unchanged)")
    for name in parts:
        if f"{name} validation" in record:
            r = record[f"{name} validation"]
            log(f"{name} validation: ECE {r['ece_before'] * 100:.2f}% -> {r['ece_after'] * 100:.2f}%")
    return record
