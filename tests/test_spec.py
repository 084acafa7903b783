"""The ModelSpec (issue 30): a model's input, labels, normalisation and framing resolved once from its file, checked,
and honoured by every command -- a 48x48 grey model and a 112x112 colour one alike."""

import json

import cv2
import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from conftest import group_photo, make_faces
from ferkit.cli import app
from ferkit.pipeline.face_images import SAMPLE_PHOTO
from ferkit.runtime.spec import ModelSpec, SpecError, as_model_input, resolve_spec

runner = CliRunner()
GREY = {"labels": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"], "input_size": [48, 48],
        "channels": 1, "normalization": {"mean": 0.5, "std": 0.25}}


class TinyRGB(nn.Module):
    """A small colour network: 112x112 RGB in, 7 logits out (the shape of the FaceRes models, in a fraction of the
    time)."""

    input_spec = {"size": 112, "channels": 3}

    def __init__(self, num_classes: int = 7):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 5, stride=4, padding=2), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2),
                                 nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, num_classes))

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope="module")
def colour_model(tmp_path_factory):
    """A 112x112 RGB model trained for one epoch by `ferkit.train` on generated FER2013-style rows (so the training
    path of colour models is exercised too): its model.safetensors."""
    from ferkit.data.fer2013 import FerData
    from ferkit.models import _REGISTRY, register_model
    from ferkit.train import make_config, train

    if "tiny-rgb" not in _REGISTRY:
        register_model("tiny-rgb", TinyRGB)
    images, labels = make_faces(210)
    data = FerData(images, labels, np.array(["Training"] * 180 + ["PublicTest"] * 30), "generated")
    out = tmp_path_factory.mktemp("rgb") / "run"
    cfg = make_config("fast", model="tiny-rgb", epochs=1, batch_size=32, out=str(out), data="generated",
                      aug_colour=0.5, command="test")
    train(cfg, data=data, progress=False, log=lambda m: None)
    return out / "model.safetensors"


def test_spec_reads_and_checks_metadata():
    spec = ModelSpec.from_metadata(GREY, "m.onnx")
    assert (spec.size, spec.channels, spec.face_shape, spec.framing) == (48, 1, (48, 48), "box")
    bad = {"labels": [*GREY["labels"][:6]] + ["bored"]}
    for change, words in [(bad, "labels must be"), ({"labels": GREY["labels"][:6] + ["angry"]}, "distinct"),
                          ({"input_size": [48, 40]}, "input_size"), ({"channels": 2}, "channels"),
                          ({"normalization": {"mean": 0.5}}, "normalization"), ({"framing": "eyes"}, "framing"),
                          ({"temperature": 0}, "temperature")]:
        with pytest.raises(SpecError, match=words) as err:
            ModelSpec.from_metadata({**GREY, **change}, "m.onnx")
        assert "m.onnx" in str(err.value)
    rgb = {**GREY, "channels": 3, "input_size": [112, 112], "preprocessing": "equalize_hist"}
    with pytest.raises(SpecError, match="grey models"):
        ModelSpec.from_metadata(rgb, "m.onnx")


def test_every_shipped_model_has_a_spec():
    from ferkit.weights import shipped_models

    for name in shipped_models():
        spec = resolve_spec(name)
        assert spec.labels and spec.size in (48, 112)


def test_network_input_for_grey_and_colour_models():
    grey = ModelSpec.from_metadata(GREY)
    faces = np.full((2, 48, 48), 255, np.uint8)
    assert grey.network_input(faces).shape == (2, 1, 48, 48)
    assert grey.network_input(faces)[0, 0, 0, 0] == pytest.approx(2.0)  # (1 - 0.5) / 0.25
    rgb = ModelSpec.from_metadata({**GREY, "channels": 3, "input_size": [112, 112],
                                   "normalization": {"mean": 0.0, "std": 1 / 255}})
    crops = np.zeros((3, 112, 112, 3), np.uint8)
    crops[..., 0] = 200  # red
    x = rgb.network_input(crops)
    assert x.shape == (3, 3, 112, 112) and x[0, 0, 5, 5] == pytest.approx(200) and x[0, 1, 5, 5] == 0
    # FER2013's 48x48 grey faces go in enlarged, grey replicated, as training converted them
    x = rgb.network_input(faces)
    assert x.shape == (2, 3, 112, 112) and np.allclose(x, 255)
    np.testing.assert_array_equal(as_model_input(faces, 112, True)[0, :, :, 1], 255)
    with pytest.raises(ValueError, match=r"\(N, 112, 112, 3\) RGB crops"):
        rgb.network_input(np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\(N, 48, 48\) grey images"):
        grey.network_input(np.zeros((2, 112, 112, 3), np.uint8))


def test_a_colour_model_is_cropped_in_colour_at_its_size(colour_model):
    from ferkit.pipeline.recognize import Recognizer

    rec = Recognizer(str(colour_model))
    assert rec.spec.face_shape == (112, 112, 3) and rec.classifier.spec.size == 112
    rgb = cv2.cvtColor(group_photo(2), cv2.COLOR_BGR2RGB)
    faces = rec.locate(rgb)
    crops = rec.crops(rgb, faces)
    assert crops.shape == (2, 112, 112, 3)
    assert np.abs(crops[..., 0].astype(int) - crops[..., 2]).mean() > 5  # colour kept, not grey
    result = rec.predict(rgb, color="RGB")
    assert len(result.faces) == 2 and abs(sum(result.faces[0].probabilities.values()) - 1) < 1e-4


@pytest.mark.parametrize("which", ["grey", "colour"])
def test_predict_and_classify_honour_the_spec(which, colour_model, tmp_path):
    model = [] if which == "grey" else ["--model", str(colour_model)]
    out = tmp_path / "p.jsonl"
    result = runner.invoke(app, ["predict", str(SAMPLE_PHOTO), "--jsonl", str(out), "--no-progress", *model])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text().splitlines()[0])
    assert len(record["faces"]) == 1 and set(record["faces"][0]["probabilities"]) == set(GREY["labels"])
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), cv2.imread(str(SAMPLE_PHOTO))[40:300, 140:340])
    result = runner.invoke(app, ["classify", str(face), *model])
    assert result.exit_code == 0, result.output


def test_video_and_serve_run_a_colour_model(colour_model, tmp_path):
    from fastapi.testclient import TestClient

    from ferkit.serve import ServeConfig, create_app
    from test_video import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=6)
    out = tmp_path / "v.jsonl"
    result = runner.invoke(app, ["video", str(clip), "--jsonl", str(out), "--model", str(colour_model)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6 and all(len(r["probabilities"]) == 7 for r in rows)
    client = TestClient(create_app(ServeConfig(model=str(colour_model))))
    r = client.post("/v1/predict", content=SAMPLE_PHOTO.read_bytes(), headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200 and len(r.json()["faces"]) == 1


def test_finetune_a_colour_model(colour_model, tmp_path):
    from test_finetune import make_subject_photos

    data = make_subject_photos(tmp_path / "photos", per_class=5)
    out = tmp_path / "tuned"
    result = runner.invoke(app, ["finetune", str(data), "--base", str(colour_model), "--out", str(out),
                                 "--epochs", "20", "--no-progress"])
    assert result.exit_code == 0, result.output
    spec = resolve_spec(str(out / "model.onnx"))
    assert spec.face_shape == (112, 112, 3)
    report = json.loads((out / "finetune.json").read_text())
    assert report["faces"] == 15


def test_the_pytorch_and_onnx_paths_agree_on_a_colour_model(colour_model):
    from ferkit.analysis.evaluate import load_predictor

    faces = np.random.default_rng(0).integers(0, 256, (4, 112, 112, 3), dtype=np.uint8)
    torch_predict, _ = load_predictor(str(colour_model))
    from ferkit.runtime.classifier import Classifier

    np.testing.assert_allclose(torch_predict(faces), Classifier(str(colour_model)).predict_proba(faces), atol=1e-4)
    grey = make_faces(3)[0]
    np.testing.assert_allclose(torch_predict(grey), Classifier(str(colour_model)).predict_proba(grey), atol=1e-4)


def test_an_onnx_whose_graph_disagrees_with_its_metadata_is_refused(tmp_path):
    from ferkit.runtime.onnx_io import export_onnx
    from ferkit.runtime.classifier import Classifier
    from ferkit.weights import WeightsError

    net = nn.Sequential(nn.Flatten(), nn.Linear(48 * 48, 5))
    path = export_onnx(net, tmp_path / "five.onnx", GREY, fp16_weights=False)
    with pytest.raises(WeightsError, match="gives 5 outputs but its metadata names 7 labels"):
        Classifier(path)
    path = export_onnx(nn.Sequential(nn.Flatten(), nn.Linear(48 * 48, 7)), tmp_path / "rgb.onnx", GREY,
                       fp16_weights=False)
    meta = {**GREY, "channels": 3, "input_size": [112, 112]}
    from ferkit.runtime.onnx_io import set_metadata
    import onnx

    proto = onnx.load(str(path))
    set_metadata(proto, meta)
    onnx.save(proto, str(path))
    with pytest.raises(WeightsError, match="metadata promises input float"):
        Classifier(path)


@pytest.mark.parametrize("view", ["feature-maps", "saliency"])
def test_visualize_a_colour_model(view, colour_model, tmp_path):
    out = tmp_path / f"{view}.png"
    result = runner.invoke(app, ["visualize", view, "--model", str(colour_model), "--image", str(SAMPLE_PHOTO),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000


def test_serve_and_predict_refuse_a_model_whose_labels_do_not_fit(tmp_path):
    from ferkit.runtime.onnx_io import export_onnx

    six = {**GREY, "labels": GREY["labels"][:6]}  # 6 labels for 7 outputs: neutral would vanish silently
    path = export_onnx(nn.Sequential(nn.Flatten(), nn.Linear(48 * 48, 7)), tmp_path / "six.onnx", six,
                       fp16_weights=False)
    for argv in (["serve", "--model", str(path), "--port", "8791"], ["predict", "--model", str(path)]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 1 and "gives 7 outputs but its metadata names 6 labels" in result.output
        assert "ferkit serve: http" not in result.output and "Traceback" not in result.output
    unknown = {**GREY, "labels": GREY["labels"][:6] + ["bored"]}
    path = export_onnx(nn.Sequential(nn.Flatten(), nn.Linear(48 * 48, 7)), tmp_path / "bored.onnx", unknown,
                       fp16_weights=False)
    result = runner.invoke(app, ["predict", "--model", str(path)])
    assert result.exit_code == 1 and "labels must be distinct names" in result.output and str(path) in result.output


def test_evaluate_photos_takes_an_ensemble_and_a_colour_model(tmp_path, colour_model):
    """An ensemble's spec is its members' (its own metadata has no normalisation): evaluate --photos crops for it."""
    from test_finetune import make_subject_photos

    data = make_subject_photos(tmp_path / "photos", per_class=2)
    for k, model in enumerate(("fer-ens3", str(colour_model))):
        report = tmp_path / f"r{k}.json"
        result = runner.invoke(app, ["evaluate", "--photos", str(data), "--model", model, "--json", str(report)])
        assert result.exit_code == 0, result.output
        assert json.loads(report.read_text())["n"] == 6
