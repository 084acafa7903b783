"""Data-parallel training (DistributedDataParallel, gloo on CPU): 2 processes on a small generated data set."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import make_faces, write_csv

RECIPE = ["--model", "linear", "--optimizer", "sgd", "--lr", "0.01", "--schedule", "constant", "--no-augment",
          "--label-smoothing", "0", "--weight-decay", "0", "--val-fraction", "0.1", "--precision", "fp32",
          "--no-progress"]


def ferkit_train(*args) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-c", "from ferkit.cli import main; main()", "train", *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    images, labels = make_faces(350)
    return write_csv(tmp_path_factory.mktemp("ddp") / "tiny.csv", images, labels, ["Training"] * 280 + ["PublicTest"] * 70)


def metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_two_processes_learn_and_resume_with_one(data, tmp_path):
    run = tmp_path / "run"
    result = ferkit_train("--data", str(data), "--out", str(run), "--epochs", "2", "--batch-size", "16",
                          "--nproc", "2", *RECIPE)
    assert "data parallel: 2 processes (gloo), 16 faces each per step" in result.stdout
    rows = metrics(run)
    assert len(rows) == 2 and rows[1]["train_loss"] < rows[0]["train_loss"]
    assert (run / "model.safetensors").exists() and (run / "checkpoint.pt").exists()
    from ferkit.weights import read_metadata

    assert "--nproc 2" in read_metadata(run / "model.safetensors")["command"]

    result = ferkit_train("--data", str(data), "--out", str(run), "--epochs", "3", "--batch-size", "16", "--resume",
                          *RECIPE)
    assert "resumed from" in result.stdout and len(metrics(run)) == 3
    assert json.loads((run / "results.json").read_text())["epochs_run"] == 3


def test_two_processes_equal_one_with_the_doubled_batch(data, tmp_path):
    """Each process takes its half of the same global batch and DDP averages the gradients, so 2 x 16 faces is
    1 x 32 faces, up to the order of floating-point sums: the weights agree within 1e-4 after 2 epochs."""
    from ferkit.weights import load_tensors

    ferkit_train("--data", str(data), "--out", str(tmp_path / "two"), "--epochs", "2", "--batch-size", "16",
                 "--nproc", "2", *RECIPE)
    ferkit_train("--data", str(data), "--out", str(tmp_path / "one"), "--epochs", "2", "--batch-size", "32", *RECIPE)
    two, one = load_tensors(tmp_path / "two" / "model.safetensors"), load_tensors(tmp_path / "one" / "model.safetensors")
    assert set(two) == set(one)
    for key in one:
        assert np.abs(two[key] - one[key]).max() < 1e-4, key
    a, b = metrics(tmp_path / "two"), metrics(tmp_path / "one")
    assert abs(a[-1]["train_loss"] - b[-1]["train_loss"]) < 1e-4
    assert abs(a[0]["train_loss"] - a[-1]["train_loss"]) > 1e-3  # and training did move them


def test_torchrun_runs_the_same_training(data, tmp_path):
    from pathlib import Path

    torchrun = Path(sys.executable).with_name("torchrun")
    run = tmp_path / "torchrun"
    result = subprocess.run([str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "ferkit.train",
                             "--data", str(data), "--out", str(run), "--epochs", "1", "--batch-size", "16", *RECIPE],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "data parallel: 2 processes (gloo)" in result.stdout and len(metrics(run)) == 1
    from ferkit.weights import read_metadata

    assert read_metadata(run / "model.safetensors")["command"].startswith("torchrun --nproc-per-node 2 -m ferkit.train")
