import json
import os
import signal

import numpy as np
import pytest

import ferkit.train as training
from ferkit.data.fer2013 import load_fer2013
from ferkit.train import make_config, train
from ferkit.weights import load_tensors, read_metadata


def run(tiny_csv, out, model, resume=False, **kw):
    settings = {"batch_size": 32, "epochs": 4, "lr": 3e-3, "patience": 50, **kw}
    cfg = make_config("paper", data=str(tiny_csv), out=str(out), model=model, command="ferkit train (test)", **settings)
    return train(cfg, progress=False, log=lambda m: None, resume=resume)


def metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_training_learns_and_writes_a_complete_run(tiny_csv, tmp_path, tiny_model_name):
    results = run(tiny_csv, tmp_path / "run", tiny_model_name, epochs=6)
    rows = metrics(tmp_path / "run")
    assert len(rows) == 6
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] - 0.2
    assert results["status"] == "finished" and results["test_split"] == "PublicTest"
    assert results["test_accuracy"] > 0.3  # 7 classes: chance is 0.14
    meta = read_metadata(tmp_path / "run" / "model.safetensors")
    assert meta["labels"][3] == "happy" and meta["arch"] == tiny_model_name
    assert meta["command"] == "ferkit train (test)"
    assert set(meta["accuracy"]) == {"train", "val", "PublicTest"}
    assert 0.3 < meta["normalization"]["mean"] < 0.7


def test_resume_after_epoch_gives_the_same_model(tiny_csv, tmp_path, tiny_model_name):
    run(tiny_csv, tmp_path / "straight", tiny_model_name, epochs=3)
    run(tiny_csv, tmp_path / "split", tiny_model_name, epochs=1)
    run(tiny_csv, tmp_path / "split", tiny_model_name, epochs=3, resume=True)
    a = load_tensors(tmp_path / "straight" / "model.safetensors")
    b = load_tensors(tmp_path / "split" / "model.safetensors")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert [r["val_acc"] for r in metrics(tmp_path / "straight")] == [r["val_acc"] for r in metrics(tmp_path / "split")]


def test_signal_saves_mid_epoch_and_resume_finishes_identically(tiny_csv, tmp_path, tiny_model_name, monkeypatch):
    run(tiny_csv, tmp_path / "straight", tiny_model_name, epochs=3)

    real_progress = training._progress

    def progress_with_ctrl_c(steps, epoch, epochs, enabled):
        for i, step in enumerate(real_progress(steps, epoch, epochs, enabled)):
            yield step
            if epoch == 1 and i == 2:
                os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, caught by train()'s handler

    monkeypatch.setattr(training, "_progress", progress_with_ctrl_c)
    interrupted = run(tiny_csv, tmp_path / "cut", tiny_model_name, epochs=3)
    assert interrupted["status"] == "interrupted" and interrupted["epochs_run"] == 1
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    monkeypatch.setattr(training, "_progress", real_progress)
    resumed = run(tiny_csv, tmp_path / "cut", tiny_model_name, epochs=3, resume=True)
    assert resumed["status"] == "finished"
    a = load_tensors(tmp_path / "straight" / "model.safetensors")
    b = load_tensors(tmp_path / "cut" / "model.safetensors")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_early_stopping_restores_best(tiny_csv, tmp_path, tiny_model_name):
    results = run(tiny_csv, tmp_path / "run", tiny_model_name, epochs=30, patience=1, lr=1e-3)
    rows = metrics(tmp_path / "run")
    assert results["status"] == "early_stopped"
    assert results["best_val_acc"] == max(r["val_acc"] for r in rows)
    assert rows[-1]["val_acc"] <= results["best_val_acc"]


def test_time_budget_stops_and_still_writes_the_model(tiny_csv, tmp_path, tiny_model_name):
    results = run(tiny_csv, tmp_path / "run", tiny_model_name, epochs=100_000, patience=0, time_budget_min=0.05)
    assert results["status"] == "budget" and results["epochs_run"] < 1000
    assert (tmp_path / "run" / "model.safetensors").exists()


def test_resume_refuses_a_different_recipe(tiny_csv, tmp_path, tiny_model_name):
    run(tiny_csv, tmp_path / "run", tiny_model_name, epochs=1)
    with pytest.raises(ValueError, match="checkpoint was made with batch_size=32"):
        cfg = make_config("paper", data=str(tiny_csv), out=str(tmp_path / "run"), model=tiny_model_name, batch_size=64)
        train(cfg, resume=True, progress=False, log=lambda m: None)


def test_presets_and_precision():
    assert make_config("paper").batch_size == 200 and make_config("paper").optimizer == "adam"
    assert make_config("paper", epochs=3).epochs == 3
    with pytest.raises(KeyError, match="unknown preset"):
        make_config("nope")
    with pytest.raises(ValueError):
        training.use_bf16("fp8")
    assert training.use_bf16("fp32") is False


def test_data_passed_in_is_used(tiny_csv, tmp_path, tiny_model_name):
    data = load_fer2013(tiny_csv)
    cfg = make_config("paper", out=str(tmp_path / "r"), model=tiny_model_name, epochs=1, batch_size=64)
    assert train(cfg, data=data, progress=False, log=lambda m: None)["epochs_run"] == 1


def test_onecycle_schedule():
    cfg = make_config("paper", lr=1.0, schedule="onecycle", warmup_frac=0.25)
    lrs = [training.lr_at(cfg, s, 100) for s in range(100)]
    assert lrs[0] == 1 / 25 and max(lrs) == 1.0 and lrs.index(1.0) == 24
    assert all(a >= b for a, b in zip(lrs[24:], lrs[25:])) and lrs[-1] == 1 / 75
    assert training.lr_at(make_config("paper", lr=0.3), 50, 100) == 0.3


def test_fast_recipe_features_resume_identically(tiny_csv, tmp_path, tiny_model_name, monkeypatch):
    """Augmentation (with photo degradations), mixup, class weights, one-cycle SGD, label smoothing, EMA, flip TTA,
    last-epoch selection and test monitoring, interrupted mid-epoch and resumed: bit-identical to a straight run."""
    kw = dict(epochs=3, lr=0.05, ema=0.9, mixup=0.2, class_weight="sqrt-inverse", aug_photo=0.5)

    def fast(out, **more):
        cfg = make_config("fast", data=str(tiny_csv), out=str(out), model=tiny_model_name, batch_size=32, **kw)
        return train(cfg, progress=False, log=lambda m: None, **more)

    straight = fast(tmp_path / "a")
    rows = metrics(tmp_path / "a")
    assert [r["epoch"] for r in rows] == [1, 2, 3] and all("test_acc" in r and "test_acc_plain" in r for r in rows)
    assert straight["best_epoch"] == 3  # select=last
    assert rows[-1]["lr"] < rows[0]["lr"]
    kw["epochs"] = 3
    cfg_short = make_config("fast", data=str(tiny_csv), out=str(tmp_path / "b"), model=tiny_model_name, batch_size=32,
                            **kw)
    real_progress = training._progress

    def progress_with_ctrl_c(steps, epoch, epochs, enabled):
        for i, step in enumerate(real_progress(steps, epoch, epochs, enabled)):
            yield step
            if epoch == 1 and i == 1:
                os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(training, "_progress", progress_with_ctrl_c)
    assert train(cfg_short, progress=False, log=lambda m: None)["status"] == "interrupted"
    monkeypatch.setattr(training, "_progress", real_progress)
    fast(tmp_path / "b", resume=True)
    a = load_tensors(tmp_path / "a" / "model.safetensors")
    b = load_tensors(tmp_path / "b" / "model.safetensors")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_photo_augmentation_needs_augment_on(tiny_csv, tmp_path, tiny_model_name):
    cfg = make_config("paper", data=str(tiny_csv), out=str(tmp_path / "r"), model=tiny_model_name, epochs=1,
                      aug_photo=0.5)
    with pytest.raises(ValueError, match="aug_photo must be in 0..1 and needs augment on"):
        train(cfg, progress=False, log=lambda m: None)


def test_class_weights():
    labels = np.array([0] * 90 + [1] * 10)
    assert training.class_weights(labels, "none") is None
    w = training.class_weights(labels, "inverse", num_classes=2).numpy()
    assert w[1] / w[0] == pytest.approx(9.0)
    w = training.class_weights(labels, "sqrt-inverse", num_classes=2).numpy()
    assert w[1] / w[0] == pytest.approx(3.0)
    assert (w[labels]).mean() == pytest.approx(1.0)  # the loss keeps its scale
    with pytest.raises(ValueError, match="class_weight"):
        training.class_weights(labels, "bogus")


def test_views_to_proba_and_temperature():
    z = np.array([[[2.0, 0.0, -1.0]], [[0.0, 1.0, 0.0]]])  # 2 views, 1 face, 3 classes
    p1 = training.views_to_proba(z)
    manual = (np.exp(z[0, 0]) / np.exp(z[0, 0]).sum() + np.exp(z[1, 0]) / np.exp(z[1, 0]).sum()) / 2
    np.testing.assert_allclose(p1[0], manual, rtol=1e-6)
    hot, cold = training.views_to_proba(z[:1], 0.5), training.views_to_proba(z[:1], 2.0)
    assert hot.max() > training.views_to_proba(z[:1]).max() > cold.max()
    assert hot.argmax() == cold.argmax() == 0


def test_distillation_learns_from_a_teacher(tiny_csv, tmp_path, tiny_model_name):
    run(tiny_csv, tmp_path / "teacher", tiny_model_name, epochs=6)
    teacher = str(tmp_path / "teacher" / "model.safetensors")
    data = load_fer2013(tiny_csv)
    faces = data.split("Training").images[:50]
    soft = training.teacher_targets(teacher, faces, 2.0).numpy()
    assert soft.shape == (50, 7) and np.allclose(soft.sum(1), 1, atol=1e-5)
    # T flattens the teacher's distribution: its top probability is lower than at T = 1
    assert (soft.max(1) <= training.teacher_targets(teacher, faces, 1.0).numpy().max(1) + 1e-6).all()
    # an ensemble of teachers: the log-mean of their own targets (members as .safetensors runs)
    run(tiny_csv, tmp_path / "teacher2", tiny_model_name, epochs=2, seed=1)
    second = str(tmp_path / "teacher2" / "model.safetensors")
    spec = {"ferkit_ensemble": 1, "members": [{"model": teacher}, {"model": second}]}
    (tmp_path / "duo.ensemble.json").write_text(json.dumps(spec))
    both = training.teacher_targets(str(tmp_path / "duo.ensemble.json"), faces, 2.0).numpy()
    expected = np.sqrt(soft * training.teacher_targets(second, faces, 2.0).numpy())
    np.testing.assert_allclose(both, expected / expected.sum(1, keepdims=True), atol=1e-5)
    # alpha = 1: the student sees only the teacher's soft targets, never a label, and still learns the task
    results = run(tiny_csv, tmp_path / "student", tiny_model_name, epochs=6, distill=teacher, distill_alpha=1.0)
    assert results["test_accuracy"] > 0.3
    assert read_metadata(tmp_path / "student" / "model.safetensors")["config"]["distill"] == teacher
    with pytest.raises(ValueError, match="checkpoint was made with distill"):
        run(tiny_csv, tmp_path / "student", tiny_model_name, epochs=7, resume=True)
    with pytest.raises(ValueError, match="distill and mixup"):
        run(tiny_csv, tmp_path / "mixed", tiny_model_name, distill=teacher, mixup=0.2)


def test_resume_compares_the_whole_recipe(tiny_csv, tmp_path, tiny_model_name):
    run(tiny_csv, tmp_path / "run", tiny_model_name, epochs=1)
    for change, message in [({"label_smoothing": 0.1}, "label_smoothing=0.0"),
                            ({"preprocessing": "clahe"}, "preprocessing='none'"),
                            ({"labels": "ferplus-votes"}, "labels='fer2013'"),
                            ({"aug_rotate": 5.0}, "aug_rotate=10.0")]:
        with pytest.raises(ValueError, match=f"checkpoint was made with {message}"):
            run(tiny_csv, tmp_path / "run", tiny_model_name, resume=True, epochs=2, **change)
    # what a resume may change: how long it runs (and where the data and files live)
    assert run(tiny_csv, tmp_path / "run", tiny_model_name, resume=True, epochs=2)["epochs_run"] == 2


def test_checkpoints_older_than_a_field_compare_with_its_default():
    saved = {k: v for k, v in training.asdict(make_config("paper")).items() if k != "preprocessing"}
    training.check_resumable(saved, make_config("paper"))
    with pytest.raises(ValueError, match="preprocessing='none', not 'clahe'"):
        training.check_resumable(saved, make_config("paper", preprocessing="clahe"))
