import json

import numpy as np
import pytest
import torch

from conftest import make_faces
from ferkit.runtime import preprocess
from ferkit.analysis.export import export_weights
from ferkit.models import create_model, load_model, model_tensors
from ferkit.runtime.classifier import Classifier
from ferkit.train import predict_proba
from ferkit.weights import WeightsError, read_manifest, resolve, save_weights, sha256_of, shipped_path

META = {"arch": "seed", "labels": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
        "input_size": [48, 48], "channels": 1, "normalization": {"scale": 1 / 255, "mean": 0.5, "std": 0.25},
        "command": "test", "accuracy": {"PublicTest": 0.1}}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A randomly initialised seed net written as a run's model.safetensors, then exported."""
    root = tmp_path_factory.mktemp("export")
    torch.manual_seed(1)
    net = create_model("seed")
    for p in net.parameters():  # non-zero biases so a dropped bias would show
        if p.ndim <= 3:
            torch.nn.init.normal_(p, std=0.05)
    save_weights(root / "model.safetensors", model_tensors(net), META)
    entry = export_weights(root / "model.safetensors", "demo", root / "weights")
    return root, entry


def test_onnx_agrees_with_pytorch(exported):
    root, _ = exported
    faces, _ = make_faces(20, seed=3)
    net = load_model(root / "weights" / "demo.safetensors")  # the fp16 source of truth
    torch_probs = predict_proba(net, faces, 0.5, 0.25, channels_last=False)
    clf = Classifier(root / "weights" / "demo.onnx")
    onnx_probs = clf.predict_proba(faces)
    np.testing.assert_allclose(onnx_probs, torch_probs, atol=1e-4)
    x = torch.from_numpy(clf.preprocess(faces))
    with torch.no_grad():
        np.testing.assert_allclose(clf.logits(faces), net(x).numpy(), atol=1e-4)
    assert clf.labels == META["labels"]
    assert np.allclose(onnx_probs.sum(1), 1, atol=1e-5)


def test_export_writes_fp16_and_manifest(exported):
    root, entry = exported
    manifest = json.loads((root / "weights" / "manifest.json").read_text())
    assert manifest["demo"] == entry
    assert entry["onnx"]["sha256"] == sha256_of(root / "weights" / "demo.onnx")
    net = load_model(root / "weights" / "demo.safetensors")
    assert net.ferkit_meta["dtype"] == "float16" and net.ferkit_meta["name"] == "demo"
    assert (root / "weights" / "demo.onnx").stat().st_size < 0.6 * (root / "model.safetensors").stat().st_size


def test_classifier_rejects_wrong_shapes(exported):
    clf = Classifier(exported[0] / "weights" / "demo.onnx")
    with pytest.raises(ValueError, match=r"\(N, 48, 48\)"):
        clf.predict_proba(np.zeros((2, 64, 64), np.uint8))
    assert clf.predict_proba(np.zeros((48, 48), np.uint8)).shape == (1, 7)


def test_bad_weight_files(tmp_path):
    with pytest.raises(WeightsError, match="no such weight file"):
        resolve(tmp_path / "missing.safetensors")
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(WeightsError, match="not a loadable ONNX model"):
        Classifier(tmp_path / "junk.onnx")
    with pytest.raises(WeightsError, match="no shipped weights named 'nope'"):
        shipped_path("nope")


def test_shipped_seed_loads_offline_both_ways():
    clf = Classifier("seed")
    net = load_model("seed")
    meta = net.ferkit_meta
    assert meta["arch"] == "seed" and meta["accuracy"]["PublicTest"] >= 0.53
    assert "ferkit train" in meta["command"]
    faces, _ = make_faces(8)
    norm = meta["normalization"]
    seen = preprocess.apply(faces, preprocess.of(meta))  # what the network sees (seed: equalised faces)
    np.testing.assert_allclose(clf.predict_proba(faces), predict_proba(net, seen, norm["mean"], norm["std"]), atol=1e-4)


def test_classifier_applies_the_temperature(exported, tmp_path):
    root, _ = exported
    faces, _ = make_faces(6, seed=5)
    plain = Classifier(root / "weights" / "demo.onnx")
    tensors = load_model(root / "weights" / "demo.safetensors")
    save_weights(tmp_path / "hot.safetensors", model_tensors(tensors), {**META, "temperature": 0.5})
    export_weights(tmp_path / "hot.safetensors", "hot", tmp_path / "w")
    hot = Classifier(tmp_path / "w" / "hot.onnx")
    assert hot.temperature == 0.5 and plain.temperature == 1.0
    z = plain.logits(faces)
    expected = np.exp(z / 0.5 - (z / 0.5).max(1, keepdims=True))
    np.testing.assert_allclose(hot.predict_proba(faces), expected / expected.sum(1, keepdims=True), atol=1e-4)
    np.testing.assert_array_equal(hot.predict_proba(faces).argmax(1), plain.predict_proba(faces).argmax(1))


def test_fer_real_is_one_calibrated_network_that_learned_from_real_faces():
    """`fer-real` (issue 23): ONE vgg-m network, trained on FER2013 beside RAF-DB and the AffectNet subset, its
    framing declared, calibrated, one pass per face (no TTA); its ONNX file and its PyTorch weights give the same
    probabilities through its own preprocessing. PyTorch-side commands given its int8 copy take it."""
    from ferkit.runtime.crop import FRAMINGS

    clf = Classifier("fer-real")
    meta = clf.metadata
    assert clf.members == [] and meta["arch"] == "vgg-m" and clf.tta is False and clf.precision == "fp32"
    assert [s["name"] for s in meta["sources"]] == ["fer2013", "rafdb", "affectnet_subset"]
    assert all(s["train_faces"] > 10_000 for s in meta["sources"])
    assert meta["framing"] in FRAMINGS and meta["config"]["logit_adjust"] == 1.0
    assert meta["accuracy"]["rafdb_validation"] >= 0.75 and meta["accuracy"]["PublicTest"] >= 0.64
    assert 0.5 < clf.temperature < 2 and "rafdb's validation part" in meta["calibration"]["fitted_on"]
    assert "--data" in meta["command"] and "rafdb" in meta["command"] and "--init fer-e" in meta["command"]
    assert shipped_path("fer-real", "onnx").stat().st_size <= 25 * 2**20  # issue 23's budget

    net = load_model("fer-real-int8")
    assert resolve("fer-real-int8", "safetensors") == shipped_path("fer-real")  # the int8 model's fp32 network
    faces, _ = make_faces(8)
    norm = net.ferkit_meta["normalization"]
    for tta in (False, True):
        ours = Classifier("fer-real", tta=tta).predict_proba(faces)
        ref = predict_proba(net, preprocess.apply(faces, preprocess.of(net.ferkit_meta)), norm["mean"], norm["std"],
                            tta=tta, temperature=net.ferkit_meta["temperature"])
        np.testing.assert_allclose(ours, ref, atol=1e-4)


# The int8 model against its fp32 source: the largest difference of any probability. Measured 0.063 on these
# generated faces; on FER2013 PublicTest 0.095 at most, 0.0037 on average, the same argmax on 98.5% of the faces.
INT8_TOLERANCE = 0.1


@pytest.mark.parametrize("int8, fp32, tolerance", [
    ("fer-real-int8", "fer-real", INT8_TOLERANCE),
    # measured 0.104 at most on these generated faces (noise, far from any face it learned from); on the real sets
    # it is within half a point of its fp32 network everywhere (docs/results/faceres.txt)
    ("fer-faceres-int8", "fer-faceres", 0.15)])
def test_int8_models_stay_within_tolerance_of_their_fp32_network(int8, fp32, tolerance):
    """Issue 25: an int8 model (static, per-channel) ships only if it lost <= 0.5 points on PublicTest and ExpW dev
    beside its fp32 network in one run (its metadata and manifest say by how much). On generated faces its
    probabilities stay within INT8_TOLERANCE of fp32's, with the same preprocessing, normalisation, temperature,
    labels and input (48x48 grey faces go into the 112 px colour model enlarged, as in its training)."""
    DEFAULT_MODEL = int8
    q, f = Classifier(int8), Classifier(fp32)
    assert q.precision == "int8" and q.metadata["quantized_from"]["name"] == fp32
    assert q.metadata["quantized_from"]["sha256"] == sha256_of(shipped_path(fp32, "onnx"))
    assert q.spec.face_shape == f.spec.face_shape
    assert (q.labels, q.temperature, q.preprocessing, q.tta) == (f.labels, f.temperature, f.preprocessing, f.tta)
    change = read_manifest()[DEFAULT_MODEL]["onnx"]["accuracy_change_points"]
    assert change["PublicTest"] >= -0.5 and change["expw_dev_e2e"] >= -0.5
    assert q.metadata["accuracy_change_points"] == change and q.metadata["accuracy"]["PublicTest"] >= 0.64
    assert shipped_path(DEFAULT_MODEL, "onnx").stat().st_size < 0.6 * shipped_path(fp32, "onnx").stat().st_size
    from ferkit.pipeline.face_images import SAMPLE_FACE, read_face

    faces = np.concatenate([make_faces(64, seed=5)[0], read_face(SAMPLE_FACE)[0][None]])
    pq, pf = q.predict_proba(faces), f.predict_proba(faces)
    assert np.abs(pq - pf).max() < tolerance
    assert np.allclose(pq.sum(1), 1, atol=1e-5)


def test_fer_ens3_is_the_log_mean_of_its_members():
    """`fer-ens3` (the default before `fer-real`) = the log-mean of fer-e and fer-mix, each through its own
    preprocessing, temperature and TTA."""
    from ferkit.core.inference import softmax
    from ferkit.weights import read_ensemble

    clf = Classifier("fer-ens3")
    assert [m.name for m in clf.members] == ["fer-e", "fer-mix"] and clf.combine == "log-mean"
    assert [m["weight"] for m in read_ensemble(resolve("fer-ens3", "onnx"))["members"]] == [0.5, 0.5]
    faces, _ = make_faces(8)
    a, b = Classifier("fer-e").predict_proba(faces), Classifier("fer-mix").predict_proba(faces)
    np.testing.assert_allclose(clf.predict_proba(faces), softmax((np.log(a) + np.log(b)) / 2), atol=1e-5)


def test_a_safetensors_file_works_wherever_a_model_is_taken(exported, tmp_path, monkeypatch):
    """A run's model.safetensors goes straight to Classifier, predict, classify (exported to ONNX once, into the
    cache); without PyTorch the message says what to do."""
    from typer.testing import CliRunner

    from ferkit.pipeline.face_images import SAMPLE_FACE
    from ferkit.cli import app

    root, _ = exported
    source = root / "model.safetensors"
    faces, _ = make_faces(6, seed=4)
    direct = Classifier(source)
    assert direct.path.suffix == ".onnx" and direct.path.parent.name == "onnx"
    net = load_model(source)
    np.testing.assert_allclose(direct.predict_proba(faces), predict_proba(net, faces, 0.5, 0.25), atol=1e-4)
    assert Classifier(source).path == direct.path  # cached: exported once
    result = CliRunner().invoke(app, ["classify", str(SAMPLE_FACE), "--model", str(source)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["export", str(source), "--name", "mine", "--out", str(tmp_path / "models")])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(Classifier(tmp_path / "models" / "mine.onnx").predict_proba(faces),
                               direct.predict_proba(faces), atol=1e-3)  # fp16-rounded copy
    result = CliRunner().invoke(app, ["export", str(source), "--name", "mine"])
    assert result.exit_code == 2 and "--into-package" in result.output

    monkeypatch.setenv("FERKIT_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setitem(__import__("sys").modules, "torch", None)  # as if PyTorch were not installed
    with pytest.raises(WeightsError, match=r"needs PyTorch \(pip install 'ferkit\[train\]'\); or export it"):
        Classifier(source)


def test_every_shipped_model_is_in_the_package():
    """A packaging failure must fail the tests, not turn them into skips."""
    from ferkit.weights import DEFAULT_MODEL

    manifest = read_manifest()
    assert {"seed", "fer-e", "fer-mix", "fer-ens3", DEFAULT_MODEL} <= set(manifest)
    for name, entry in manifest.items():
        for kind in entry:
            assert shipped_path(name, kind).stat().st_size > 0


def test_fer_mix_is_the_photo_model_it_says_it_is():
    """`fer-mix`: vgg-m on the original pixels with CLAHE and mixed FER2013/FER+ labels, flip TTA, calibrated; its
    ONNX file and its PyTorch weights give the same probabilities through their own preprocessing."""
    clf = Classifier("fer-mix")
    net = load_model("fer-mix")
    meta = net.ferkit_meta
    assert meta["arch"] == "vgg-m" and meta["label_source"] == "mixed" and meta["preprocessing"]["name"] == "clahe"
    assert "--labels mixed" in meta["command"] and meta["accuracy"]["PublicTest"] >= 0.67
    assert clf.tta is meta["tta"] is True and 0.5 < clf.temperature < 2
    faces, _ = make_faces(8)
    norm = meta["normalization"]
    ref = predict_proba(net, preprocess.apply(faces, preprocess.of(meta)), norm["mean"], norm["std"], tta=True,
                        temperature=meta["temperature"])
    np.testing.assert_allclose(clf.predict_proba(faces), ref, atol=1e-4)


def test_export_int8_writes_a_quantized_model_beside_fp32(exported, tiny_csv, tmp_path):
    """`ferkit export --int8 --calibration DATA`: NAME-int8.onnx beside NAME.onnx, its manifest entry naming its
    precision and source, its metadata the fp32 model's (labels, normalisation) less the fp32 figures, plus how it
    was calibrated; loaded like any model; probabilities within the stated tolerance of fp32's."""
    from typer.testing import CliRunner

    from ferkit.cli import app

    root, _ = exported
    out = tmp_path / "w"
    runner = CliRunner()
    refused = runner.invoke(app, ["export", str(root / "model.safetensors"), "--name", "demo", "--out", str(out),
                                  "--int8"])
    assert refused.exit_code == 2 and "--int8 needs --calibration" in refused.output
    for argv, message in ((["--calibration", str(tiny_csv)], "--calibration is for --int8"),
                          (["--int8", "--calibration", str(tmp_path / "missing.csv")], "missing.csv: no such file")):
        refused = runner.invoke(app, ["export", str(root / "model.safetensors"), "--name", "demo", "--out", str(out),
                                      *argv])
        assert refused.exit_code == 2 and message in refused.output, refused.output
        assert not out.exists()  # refused before anything was written
    result = runner.invoke(app, ["export", str(root / "model.safetensors"), "--name", "demo", "--out", str(out),
                                 "--int8", "--calibration", str(tiny_csv), "--calibration-faces", "64"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert (out / "demo.safetensors").stat().st_mode & 0o777 == 0o644  # readable by all, like the other files
    assert manifest["demo-int8"]["onnx"]["precision"] == "int8"
    assert manifest["demo-int8"]["onnx"]["quantized_from"] == "demo"
    q, f = Classifier(out / "demo-int8.onnx"), Classifier(out / "demo.onnx")
    assert q.precision == "int8" and f.precision == "fp32" and q.labels == f.labels
    meta = q.metadata
    assert meta["quantization"]["faces"] == 64 and str(tiny_csv) in meta["quantization"]["sources"]
    assert "accuracy" not in meta and meta["quantized_from"]["sha256"] == sha256_of(out / "demo.onnx")
    # the seed net's convolutions and dense layers are int8; its locally-connected layers (Einsum, 11 of its 12M
    # weights) are not quantized by onnxruntime and stay fp16: no larger than the fp32 file
    assert (out / "demo-int8.onnx").stat().st_size <= (out / "demo.onnx").stat().st_size
    faces, _ = make_faces(32, seed=7)
    assert np.abs(q.predict_proba(faces) - f.predict_proba(faces)).max() < INT8_TOLERANCE
