"""Fine-tuning on a user's own photos (``ferkit finetune``) and abstaining on uncertain faces (``--min-confidence``)."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import people
from ferkit.cli import app
from ferkit.weights import DEFAULT_MODEL

runner = CliRunner()
CLASSES = ("happy", "sad", "surprise")


def make_subject_photos(root: Path, per_class: int = 8, classes=CLASSES, seed: int = 0) -> Path:
    """Photos of one synthetic "subject": real faces (two people) in which each emotion is shown by a mark of its
    own (none, a dark band over the mouth, a light band on the brow), at random places, light and background."""
    rng = np.random.default_rng(seed)
    faces = people()
    for ci, emotion in enumerate(classes):
        folder = root / emotion
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            face = faces[k % 2].copy()
            if ci == 1:
                cv2.rectangle(face, (40, 140), (110, 160), (0, 0, 0), -1)
            elif ci == 2:
                cv2.rectangle(face, (30, 60), (120, 70), (255, 255, 255), -1)
            canvas = np.full((260, 220, 3), int(rng.integers(150, 230)), np.uint8)
            dx, dy = rng.integers(0, 60), rng.integers(0, 50)
            canvas[dy:dy + 200, dx:dx + 150] = face
            cv2.imwrite(str(folder / f"{emotion}_{k}.jpg"), np.clip(canvas * rng.uniform(0.85, 1.15), 0, 255).astype(np.uint8))
    return root


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    data = make_subject_photos(root / "photos")
    (data / "sad" / "broken.jpg").write_bytes(b"not a jpeg")
    cv2.imwrite(str(data / "happy" / "blank.png"), np.full((120, 120, 3), 128, np.uint8))  # no face in it
    out = root / "my-model"
    result = runner.invoke(app, ["finetune", str(data), "--out", str(out), "--epochs", "150", "--no-progress"])
    return data, out, result


def test_finetune_beats_the_base_on_held_out_faces_of_one_subject(tuned):
    data, out, result = tuned
    assert result.exit_code == 0, result.output
    for name in ("model.onnx", "model.safetensors", "manifest.json", "finetune.json", "skipped.csv"):
        assert (out / name).exists(), name
    report = json.loads((out / "finetune.json").read_text())
    assert report["faces"] == 24 and report["held_out"] == 6 and report["trained_on"] == 18
    assert report["held_out_accuracy_after"] > report["held_out_accuracy_before"]
    assert report["per_emotion"]["neutral"] == 0 and "no photos of neutral" in result.output

    from ferkit.weights import read_manifest, read_metadata

    meta = read_metadata(out / "model.safetensors")
    base = read_manifest()[DEFAULT_MODEL]["onnx"].get("quantized_from", DEFAULT_MODEL)  # the fp32 network trains
    assert meta["base"] == base and meta["finetune"]["layers"] == "head" and meta["command"]
    assert meta["accuracy"]["held_out_after"] == report["held_out_accuracy_after"]


def test_skipped_photos_are_listed_with_why(tuned):
    data, out, result = tuned
    assert "broken.jpg: unreadable" in result.output and "blank.png: no face found" in result.output
    skipped = (out / "skipped.csv").read_text().splitlines()
    assert skipped[0] == "path,reason" and len(skipped) == 3


def test_every_command_takes_the_model_folder(tuned, tmp_path):
    data, out, _ = tuned
    photo = data / "sad" / "sad_0.jpg"
    result = runner.invoke(app, ["predict", str(photo), "--model", str(out), "--json", str(tmp_path / "r.json"),
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "r.json").read_text())[0]
    from ferkit.pipeline.recognize import Recognizer

    direct = Recognizer(str(out / "model.onnx")).predict(photo).to_dict()
    assert record["faces"][0]["probabilities"] == direct["faces"][0]["probabilities"]
    from ferkit.weights import resolve

    assert resolve(out, "onnx") == out / "model.onnx" and resolve(out) == out / "model.safetensors"


def test_finetune_from_python_on_collected_faces(tuned, tmp_path):
    import ferkit
    from ferkit.adapt import collect_faces

    data, _, _ = tuned
    faces = collect_faces(data)
    assert len(faces) == 24 and len(faces.skipped) == 2
    again = collect_faces(data)  # from the cache: the same crops
    assert np.array_equal(again.crops, faces.crops)
    report = ferkit.finetune(data, tmp_path / "all", layers="all", epochs=2, faces=faces, log=lambda *_: None)
    assert report["layers"] == "all" and report["epochs_run"] <= 2 and (tmp_path / "all" / "model.onnx").exists()


def test_split_holds_out_each_emotion_and_warns_on_single_photos():
    from ferkit.adapt import split_held_out

    labels = np.array([3] * 10 + [4] * 2 + [5])
    train, held, warnings = split_held_out(labels, 0.2, seed=1)
    assert sorted(np.concatenate([train, held]).tolist()) == list(range(13))
    assert (labels[held] == 3).sum() == 2 and (labels[held] == 4).sum() == 1 and (labels[held] == 5).sum() == 0
    assert any("only 1 photo of surprise" in w for w in warnings)
    assert any("no photos of angry" in w for w in warnings)


def test_bad_data_gets_one_line_errors(tmp_path):
    bad = tmp_path / "bad"
    (bad / "happyish").mkdir(parents=True)
    result = runner.invoke(app, ["finetune", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "happyish" in result.output and "Traceback" not in result.output

    one = make_subject_photos(tmp_path / "one", per_class=2, classes=("happy",))
    result = runner.invoke(app, ["finetune", str(one), "--out", str(tmp_path / "o"), "--no-progress"])
    assert result.exit_code == 1 and "at least 2 emotions" in result.output

    table = tmp_path / "table"
    table.mkdir()
    (table / "labels.csv").write_text("path,emotion\na.jpg,happy\nb.jpg,contempt\n")
    result = runner.invoke(app, ["finetune", str(table), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "row 3" in result.output and "contempt" in result.output

    result = runner.invoke(app, ["finetune", str(one), "--out", str(tmp_path / "o"), "--layers", "middle"])
    assert result.exit_code == 2 and "unknown --layers 'middle'" in result.output  # a usage error (issue 31)


def test_min_confidence_abstains_instead_of_guessing(tmp_path):
    from ferkit.pipeline.face_images import SAMPLE_PHOTO
    from ferkit.pipeline.recognize import Recognizer

    sure = Recognizer().predict(SAMPLE_PHOTO).faces[0]
    assert not sure.uncertain and sure.emotion != "uncertain"
    top = max(sure.probabilities.values())
    unsure = Recognizer(min_confidence=min(1.0, top + 0.01)).predict(SAMPLE_PHOTO).faces[0]
    assert unsure.uncertain and unsure.emotion == "uncertain" and unsure.probabilities == sure.probabilities
    assert Recognizer(min_confidence=top - 0.01).predict(SAMPLE_PHOTO).faces[0].emotion == sure.emotion

    result = runner.invoke(app, ["predict", "--min-confidence", str(min(1.0, top + 0.01)), "--json",
                                 str(tmp_path / "r.json"), "--no-progress"])
    assert result.exit_code == 0, result.output
    face = json.loads((tmp_path / "r.json").read_text())[0]["faces"][0]
    assert face["emotion"] == "uncertain" and face["uncertain"] is True
    result = runner.invoke(app, ["predict", "--min-confidence", str(min(1.0, top + 0.01)), "--no-progress"])
    assert "uncertain (best guess" in result.output
    result = runner.invoke(app, ["predict", "--min-confidence", "1.5"])
    assert result.exit_code == 2


def test_finetuning_an_int8_base_writes_an_int8_model(tmp_path):
    """Issue 31 item 22: a quantized base (fer-real-int8) gives a quantized model.onnx, not a 10.6 MB fp32 one."""
    from ferkit.runtime.classifier import Classifier
    from ferkit.weights import read_manifest, read_metadata, shipped_path

    data = make_subject_photos(tmp_path / "photos", per_class=6)
    out = tmp_path / "tuned-int8"
    result = runner.invoke(app, ["finetune", str(data), "--out", str(out), "--base", "fer-real-int8", "--epochs", "20",
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    assert read_metadata(out / "model.onnx")["precision"] == "int8" and "int8: held-out accuracy" in result.output
    assert (out / "model.onnx").stat().st_size < 0.5 * shipped_path("fer-real", "onnx").stat().st_size
    report = json.loads((out / "finetune.json").read_text())
    assert report["precision"] == "int8" and 0 <= report["held_out_accuracy_int8"] <= 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest) == {"model"} and manifest["model"]["onnx"]["precision"] == "int8"
    assert not (out / "model-int8.onnx").exists() and read_manifest()  # nothing left beside the model
    probs = Classifier(out).predict_proba(np.zeros((2, 48, 48), np.uint8))
    assert probs.shape == (2, 7) and np.allclose(probs.sum(1), 1, atol=1e-4)


def test_a_changed_file_in_a_model_folder_is_refused(tuned, tmp_path):
    """Issue 31 item 22 (finetune.md's manifest.json): the folder's manifest is checked when the model loads."""
    import shutil

    _, out, result = tuned
    assert result.exit_code == 0, result.output
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[-10] ^= 0xFF
    (copy / "model.onnx").write_bytes(bytes(data))
    result = runner.invoke(app, ["classify", "--model", str(copy)])
    assert result.exit_code == 1 and "sha256 does not match manifest.json" in result.output
    assert "Traceback" not in result.output
