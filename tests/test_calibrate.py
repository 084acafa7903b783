import numpy as np
import pytest

from ferkit.analysis.calibrate import calibrate_weights, expected_calibration_error, fit_temperature, nll, reliability
from ferkit.data.fer2013 import load_fer2013
from ferkit.train import make_config, train, views_to_proba


def test_ece_of_known_cases():
    labels = np.array([0, 0, 0, 0])
    sure_right = np.tile([1.0, 0.0], (4, 1))
    assert expected_calibration_error(sure_right, labels) == pytest.approx(0.0)
    sure_wrong = np.tile([0.0, 1.0], (4, 1))
    assert expected_calibration_error(sure_wrong, labels) == pytest.approx(1.0)
    # confidence 0.75 everywhere, right 3 times out of 4: calibrated
    p = np.tile([0.75, 0.25], (4, 1))
    pred_right = np.array([0, 0, 0, 1])
    assert expected_calibration_error(p, pred_right) == pytest.approx(0.0)
    bins = reliability(p, pred_right)
    assert sum(b["n"] for b in bins) == 4 and [b for b in bins if b["n"]][0]["accuracy"] == 0.75


def test_fit_temperature_recovers_the_true_one():
    rng = np.random.default_rng(0)
    true_t = 2.5
    logits = rng.normal(0, 3, size=(4000, 7))
    p = views_to_proba(logits[None], true_t)
    labels = np.array([rng.choice(7, p=row / row.sum()) for row in p.astype(np.float64)])
    t = fit_temperature(logits[None], labels)
    assert t == pytest.approx(true_t, rel=0.1)
    assert nll(views_to_proba(logits[None], t), labels) < nll(views_to_proba(logits[None]), labels)
    over = views_to_proba(logits[None])
    assert expected_calibration_error(views_to_proba(logits[None], t), labels) < expected_calibration_error(over, labels)


def test_calibrate_a_run_writes_the_temperature_and_keeps_predictions(tiny_csv, tmp_path, tiny_model_name):
    cfg = make_config("fast", data=str(tiny_csv), out=str(tmp_path / "run"), model=tiny_model_name, batch_size=32,
                      epochs=2, val_fraction=0.2)
    train(cfg, progress=False, log=lambda m: None)
    weights = tmp_path / "run" / "model.safetensors"
    from ferkit.analysis.evaluate import load_predictor

    predict, _ = load_predictor(str(weights))
    data = load_fer2013(tiny_csv)
    before = predict(data.split("PublicTest").images)
    record = calibrate_weights(weights, data, log=lambda m: None)
    predict, meta = load_predictor(str(weights))
    after = predict(data.split("PublicTest").images)
    assert meta["temperature"] == record["temperature"] > 0
    assert "56 held-out Training faces" in record["fitted_on"]  # 20% of 280
    assert set(record["PublicTest"]) >= {"ece_before", "ece_after"}
    np.testing.assert_array_equal(before.argmax(1), after.argmax(1))
    if abs(record["temperature"] - 1) > 0.05:
        assert not np.allclose(before, after)


def test_calibrate_refuses_a_run_without_held_out_faces(tiny_csv, tmp_path, tiny_model_name):
    cfg = make_config("fast", data=str(tiny_csv), out=str(tmp_path / "run"), model=tiny_model_name, batch_size=32,
                      epochs=1, val_fraction=0.0)
    train(cfg, progress=False, log=lambda m: None)
    with pytest.raises(ValueError, match="val_fraction 0"):
        calibrate_weights(tmp_path / "run" / "model.safetensors", load_fer2013(tiny_csv), log=lambda m: None)


def test_calibrate_refuses_too_few_held_out_faces_and_leaves_the_file(tiny_csv, tmp_path, tiny_model_name):
    """Issue 31 item 21: a temperature fitted on a handful of faces follows their noise: refused, file untouched."""
    from typer.testing import CliRunner

    from ferkit.analysis.calibrate import MIN_CALIBRATION_FACES
    from ferkit.cli import app

    cfg = make_config("fast", data=str(tiny_csv), out=str(tmp_path / "run"), model=tiny_model_name, batch_size=32,
                      epochs=1, val_fraction=0.05)  # 14 of 280 rows held out, as in the report
    train(cfg, progress=False, log=lambda m: None)
    weights = tmp_path / "run" / "model.safetensors"
    before = weights.read_bytes()
    with pytest.raises(ValueError, match=f"only 14 held-out faces \\(fewer than {MIN_CALIBRATION_FACES}\\)"):
        calibrate_weights(weights, load_fer2013(tiny_csv), log=lambda m: None)
    result = CliRunner().invoke(app, ["calibrate", str(weights), "--data", str(tiny_csv)])
    assert result.exit_code == 1 and "left as it was" in result.output and len(result.output.splitlines()) == 1
    assert weights.read_bytes() == before


def test_a_temperature_that_worsens_ece_is_refused():
    """Issue 31 item 21: the check compares ECE on the fitted faces with and without (or with the current) T."""
    from ferkit.analysis.calibrate import temperature_refusal

    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, size=(2000, 7))
    p = views_to_proba(logits[None])
    labels = np.array([rng.choice(7, p=row / row.sum()) for row in p.astype(np.float64)])  # calibrated at T = 1
    assert "ECE worse" in temperature_refusal(logits[None], labels, 0.25)
    assert temperature_refusal(logits[None], labels, fit_temperature(logits[None], labels)) is None
    assert "too few" in temperature_refusal(logits[None, :30], labels[:30], 1.0)
    # against the current temperature: 1.0 is worse than the true T 0.25 the model already has
    sharp = views_to_proba(logits[None], 0.25)
    labels = np.array([rng.choice(7, p=row / row.sum()) for row in sharp.astype(np.float64)])
    assert "ECE worse" in temperature_refusal(logits[None], labels, 1.0, current=0.25)
