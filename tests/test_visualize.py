"""`ferkit visualize`: each figure for the paper's `seed` net and the default model, plus bad input."""

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from ferkit.cli import app
from ferkit.weights import DEFAULT_MODEL, read_manifest

runner = CliRunner()
shipped = [m for m in ("seed", DEFAULT_MODEL) if m in read_manifest()]


def _check_png(path):
    img = cv2.imread(str(path))
    assert img is not None, path
    assert min(img.shape[:2]) >= 400, img.shape
    assert img.std() > 10  # not blank
    return img


def _ok(args, out):
    result = runner.invoke(app, ["visualize", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return _check_png(out)


@pytest.mark.parametrize("model", shipped)
def test_kernels_and_feature_maps(model, tmp_path):
    _ok(["kernels", "--model", model], tmp_path / "k.png")
    _ok(["feature-maps", "--model", model], tmp_path / "f.png")
    result = runner.invoke(app, ["visualize", "feature-maps", "--model", model, "--list-layers"])
    layers = result.output.split()
    pools = [name for name in layers if name.startswith(("pool", "features")) and name.count(".") <= 1]
    _ok(["feature-maps", "--model", model, "--layer", layers[-8] if not pools else pools[0]], tmp_path / "deep.png")


@pytest.mark.parametrize("model", shipped)
def test_feature_maps_of_a_photo_use_the_found_face(model, tmp_path):
    from ferkit.classify import SAMPLE_PHOTO

    _ok(["feature-maps", "--model", model, "--image", str(SAMPLE_PHOTO)], tmp_path / "p.png")


@pytest.mark.parametrize("model", shipped)
def test_confusion_samples_and_curves(model, tiny_csv, tmp_path, tiny_model_name):
    _ok(["confusion", "--model", model, "--data", str(tiny_csv), "--split", "PublicTest"], tmp_path / "c.png")
    _ok(["samples", "--data", str(tiny_csv)], tmp_path / "s.png")
    from ferkit.train import make_config, train

    cfg = make_config("fast", data=str(tiny_csv), out=str(tmp_path / "run"), model=tiny_model_name, batch_size=64,
                      epochs=2)
    train(cfg, progress=False, log=lambda m: None)
    _ok(["curves", "--run", str(tmp_path / "run")], tmp_path / "cu.png")


def test_bad_input(tmp_path):
    def fails(*args):
        result = runner.invoke(app, ["visualize", *args, "--out", str(tmp_path / "x.png")])
        assert result.exit_code == 1, result.output
        return result.output

    assert "unknown layer 'nope'; layers:" in fails("feature-maps", "--layer", "nope")
    assert "no metrics log" in fails("curves", "--run", str(tmp_path))
    assert "unknown view 'pie'" in fails("pie")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    assert "no face found" in fails("feature-maps", "--image", str(blank))
    assert "samples needs --data" in fails("samples")
