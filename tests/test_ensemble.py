"""Ensembles: a NAME.ensemble.json naming member models, run as one model by Classifier and every --model option."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import make_faces, write_csv
from ferkit.cli import app
from ferkit.analysis.export import export_weights, write_ensemble
from ferkit.core.inference import softmax
from ferkit.models import create_model, model_tensors
from ferkit.runtime.classifier import Classifier
from ferkit.weights import WeightsError, read_ensemble, resolve, save_weights

LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def _member(folder, name, seed, preprocessing, tta=False, temperature=1.0, labels=LABELS):
    torch.manual_seed(seed)
    net = create_model("linear")
    meta = {"arch": "linear", "labels": labels, "input_size": [48, 48], "channels": 1,
            "normalization": {"mean": 0.5, "std": 0.25}, "command": "test", "preprocessing": preprocessing,
            "tta": tta, "temperature": temperature}
    save_weights(folder / f"{name}-run.safetensors", model_tensors(net), meta)
    export_weights(folder / f"{name}-run.safetensors", name, folder)
    return folder / f"{name}.onnx"


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    folder = tmp_path_factory.mktemp("members")
    a = _member(folder, "a", 0, {"name": "none"}, temperature=0.7)
    b = _member(folder, "b", 1, {"name": "equalize_hist"}, tta=True, temperature=1.3)
    return folder, a, b


def test_an_ensemble_combines_its_members_each_through_its_own_path(members, tmp_path):
    folder, a, b = members
    faces, _ = make_faces(10, seed=2)
    pa, pb = Classifier(a).predict_proba(faces), Classifier(b).predict_proba(faces)
    path, entry = write_ensemble([str(a), str(b)], "duo", tmp_path, weights=[3, 1])
    assert json.loads((tmp_path / "manifest.json").read_text())["duo"] == entry
    spec = json.loads(path.read_text())
    assert [m["model"] for m in spec["members"]] == ["../" + a.parent.name + "/a.onnx", "../" + a.parent.name + "/b.onnx"]

    clf = Classifier(path)
    assert clf.name == "duo" and clf.tta and [m.name for m in clf.members] == ["a", "b"]
    assert clf.metadata["members"][1]["preprocessing"] == {"name": "equalize_hist"}
    np.testing.assert_allclose(clf.predict_proba(faces), softmax(0.75 * np.log(pa) + 0.25 * np.log(pb)), atol=1e-5)
    write_ensemble([str(a), str(b)], "avg", tmp_path, combine="mean")
    np.testing.assert_allclose(Classifier(tmp_path / "avg.ensemble.json").predict_proba(faces), (pa + pb) / 2, atol=1e-5)
    # one member twice is that member
    write_ensemble([str(a), str(a)], "twice", tmp_path)
    np.testing.assert_allclose(Classifier(tmp_path / "twice.ensemble.json").predict_proba(faces), pa, atol=1e-5)
    # TTA off for every member
    no_tta = Classifier(path, tta=False)
    assert not no_tta.tta and not any(m.tta for m in no_tta.members)
    with pytest.raises(ValueError, match="is an ensemble"):
        clf.logits(faces)


def test_bad_ensembles_are_refused_with_the_reason(members, tmp_path):
    folder, a, b = members
    with pytest.raises(WeightsError, match="at least 2 members"):
        write_ensemble([str(a)], "one", tmp_path)
    with pytest.raises(WeightsError, match="2 weights for 3 members"):
        write_ensemble([str(a), str(b), str(a)], "w", tmp_path, weights=[1, 1])
    with pytest.raises(WeightsError, match="no such weight file"):
        write_ensemble([str(a), str(tmp_path / "gone.onnx")], "gone", tmp_path)
    assert not list(tmp_path.glob("*gone*"))  # nothing half-written
    other = _member(tmp_path, "other", 2, None, labels=LABELS[::-1])
    with pytest.raises(WeightsError, match="differ in labels"):
        write_ensemble([str(a), str(other)], "mixed", tmp_path)
    path, _ = write_ensemble([str(a), str(b)], "duo", tmp_path)
    with pytest.raises(WeightsError, match="itself an ensemble"):
        write_ensemble([str(a), str(path)], "nested", tmp_path)
    with pytest.raises(WeightsError, match="an ensemble of .*needs one network"):
        resolve(path, "safetensors")
    for text, message in [("{", "not a readable ensemble file"), ("[]", "not a ferkit ensemble file"),
                          ('{"ferkit_ensemble": 1, "members": []}', "non-empty"),
                          ('{"ferkit_ensemble": 1, "members": [{"model": "a.onnx", "weight": 0}]}', "weights must be > 0"),
                          ('{"ferkit_ensemble": 1, "combine": "max", "members": [{"model": "a.onnx"}]}',
                           "combine must be")]:
        bad = folder / "bad.ensemble.json"
        bad.write_text(text)
        with pytest.raises(WeightsError, match=message):
            read_ensemble(bad)


def test_ensemble_command_writes_measures_and_works_with_every_model_option(members, tmp_path):
    folder, a, b = members
    images, labels = make_faces(40)
    csv = write_csv(tmp_path / "t.csv", images, labels, ["PublicTest"] * 40)
    runner = CliRunner()
    result = runner.invoke(app, ["ensemble", str(a), str(b), "--name", "duo", "--out", str(tmp_path / "m"),
                                 "--data", str(csv)])
    assert result.exit_code == 0, result.output
    assert "PublicTest: accuracy" in result.output and "ECE" in result.output
    path = tmp_path / "m" / "duo.ensemble.json"
    meta = json.loads(path.read_text())["metadata"]
    probs = Classifier(path).predict_proba(images)
    assert meta["accuracy"]["PublicTest"] == pytest.approx(float((probs.argmax(1) == labels).mean()))
    assert meta["command"]  # the command line that wrote it (pytest here)

    result = runner.invoke(app, ["classify", "--model", str(path), "--json", "-"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output[result.output.index("["):])[0]
    assert abs(sum(record["faces"][0]["probabilities"].values()) - 1) < 1e-3
    result = runner.invoke(app, ["evaluate", "--model", str(path), "--data", str(csv), "--split", "PublicTest"])
    assert result.exit_code == 0, result.output

    result = runner.invoke(app, ["ensemble", str(a), "--name", "x", "--out", str(tmp_path / "m")])
    assert result.exit_code == 1 and "at least 2 members" in result.output
    result = runner.invoke(app, ["ensemble", str(a), str(b), "--name", "x"])
    assert result.exit_code == 2 and "--into-package" in result.output
