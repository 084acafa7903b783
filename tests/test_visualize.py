"""`ferkit visualize`: each figure for the paper's `seed` net and the default network, plus bad input."""

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from ferkit.cli import app
from ferkit.weights import DEFAULT_MODEL, resolve

runner = CliRunner()
shipped = ["seed", resolve(None, "safetensors").stem]  # the default network: what `visualize` takes without --model


def test_an_ensemble_is_refused_and_no_model_means_the_default_network(tmp_path):
    result = runner.invoke(app, ["visualize", "kernels", "--model", "fer-ens3", "--out", str(tmp_path / "k.png")])
    assert result.exit_code == 1 and "needs one network: give one of them" in result.output
    from ferkit.weights import read_manifest

    # the default model, or the fp32 network an int8 default was quantized from
    assert shipped[1] == read_manifest()[DEFAULT_MODEL]["onnx"].get("quantized_from", DEFAULT_MODEL)
    result = runner.invoke(app, ["visualize", "kernels", "--out", str(tmp_path / "k.png")])
    assert result.exit_code == 0, result.output
    _check_png(tmp_path / "k.png")


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
    from ferkit.pipeline.face_images import SAMPLE_PHOTO

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
    usage = runner.invoke(app, ["visualize", "pie", "--out", str(tmp_path / "x.png")])
    assert usage.exit_code == 2 and "unknown view 'pie'" in usage.output  # usage errors exit 2 (getting-started)
    usage = runner.invoke(app, ["visualize", "kernels"])
    assert usage.exit_code == 2 and "--out FILE.png is required" in usage.output
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    assert "no face found" in fails("feature-maps", "--image", str(blank))
    assert "samples needs --data" in fails("samples")


@pytest.mark.parametrize("model", shipped)
def test_saliency_figure(model, tmp_path):
    _ok(["saliency", "--model", model], tmp_path / "s.png")
    _ok(["saliency", "--model", model, "--emotion", "sad"], tmp_path / "sad.png")


@pytest.mark.parametrize("model", shipped)
def test_grad_cam_passes_the_weight_randomisation_sanity_check(model):
    """Adebayo et al. 2018: a saliency map that survives randomising the weights explains nothing."""
    import torch

    from ferkit.pipeline.face_images import read_face
    from ferkit.pipeline.face_images import SAMPLE_FACE
    from ferkit.models import create_model, load_model
    from ferkit.analysis.visualize import grad_cam

    face, _ = read_face(SAMPLE_FACE)
    trained = load_model(model)
    cam, cls = grad_cam(trained, face)
    assert cam.shape == (48, 48) and 0 <= cam.min() and cam.max() == pytest.approx(1.0, abs=1e-5)
    torch.manual_seed(0)
    random = create_model(trained.ferkit_meta["arch"])
    random.ferkit_meta = trained.ferkit_meta
    cam_random, _ = grad_cam(random, face, cls)
    corr = np.corrcoef(cam.ravel(), cam_random.ravel())[0, 1]
    assert not np.isfinite(corr) or corr < 0.5, corr  # the map changed with the weights


@pytest.mark.parametrize("model", shipped)
def test_html_report_is_self_contained(model, tiny_csv, tmp_path):
    from html.parser import HTMLParser

    result = runner.invoke(app, ["visualize", "report", "--model", model, "--data", str(tiny_csv), "--split",
                                 "PublicTest", "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.images, self.tables, self.external = [], 0, []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "img":
                self.images.append(attrs["src"])
            if tag == "table":
                self.tables += 1
            if attrs.get("href", "").startswith("http") or attrs.get("src", "").startswith("http"):
                self.external.append(attrs)

    tags = Tags()
    tags.feed(page)
    assert len(tags.images) >= 4 and all(src.startswith("data:image/png;base64,") for src in tags.images)
    assert tags.tables == 3 and not tags.external
    assert "accuracy" in page and "Second guess" in page and "fear &rarr; surprise" in page
    result = runner.invoke(app, ["visualize", "report", "--out", str(tmp_path / "x.html")])
    assert result.exit_code == 1 and "report needs --data" in result.output


def test_report_numbers_and_titles_are_of_one_model(tiny_csv, tmp_path):
    """Without --model the figures are of the default network: so are the numbers."""
    import re

    from ferkit.data.fer2013 import load_fer2013
    from ferkit.analysis.evaluate import compute_metrics, load_predictor

    result = runner.invoke(app, ["visualize", "report", "--data", str(tiny_csv), "--split", "PublicTest", "--out",
                                 str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    assert f"<title>ferkit report: {shipped[1]}</title>" in page and f"<h1>ferkit report: {shipped[1]}</h1>" in page
    assert f"{shipped[1]} on PyTorch" in page
    data = load_fer2013(tiny_csv).split("PublicTest")
    want = compute_metrics(load_predictor(shipped[1])[0](data.images), data.labels)  # as predict runs it
    accuracy, nll = re.search(r"accuracy <b>([0-9.]+)%</b>.*NLL ([0-9.]+)", page, re.S).groups()
    assert float(accuracy) == pytest.approx(want["accuracy"] * 100, abs=0.011)
    assert float(nll) == pytest.approx(want["nll"], abs=2e-4)


@pytest.mark.skipif(not __import__("shutil").which("chromium"), reason="no chromium on this machine")
def test_html_report_renders_in_a_browser(tiny_csv, tmp_path):
    import subprocess

    runner.invoke(app, ["visualize", "report", "--data", str(tiny_csv), "--out", str(tmp_path / "r.html")])
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1400", f"--screenshot={shot}",
                    (tmp_path / "r.html").as_uri()], capture_output=True, timeout=120)
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[:2] == (1400, 1000) and img.std() > 10


def _drawn_outside(fig) -> list[float]:
    """How far (px) what the figure draws (titles, labels, the colour bar and its label) reaches past each edge
    (left, bottom, right, top): all <= 0 when nothing is cut off."""
    fig.canvas.draw()
    drawn = fig.get_tightbbox(fig.canvas.get_renderer()).transformed(fig.dpi_scale_trans)
    box = fig.bbox
    return [box.x0 - drawn.x0, box.y0 - drawn.y0, drawn.x1 - box.x1, drawn.y1 - box.y1]


@pytest.mark.parametrize("n", [1, 5, 12])
def test_saliency_keeps_every_label_inside_the_figure(n):
    """Issue 31 item 22: the colour bar's label "Grad-CAM (0..1)" was cut off at the right edge."""
    from ferkit.models import load_model
    from ferkit.analysis.visualize import saliency

    net = load_model("seed")
    faces = [np.random.default_rng(k).integers(0, 255, (48, 48), dtype=np.uint8) for k in range(n)]
    fig = saliency(net, faces)
    assert max(_drawn_outside(fig)) <= 1
    assert any(t.get_text() == "Grad-CAM (0..1)" for t in fig.findobj(lambda a: hasattr(a, "get_text")))


def test_curves_of_one_epoch_draw_points(tmp_path):
    """Issue 31 item 22: a run of one epoch drew empty axes (a line through one point is invisible)."""
    import json

    from ferkit.analysis.visualize import curves

    (tmp_path / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "train_loss": 1.5, "val_loss": 1.6,
                                                        "train_acc": 0.4, "val_acc": 0.38, "test_acc": 0.37}) + "\n")
    fig = curves(tmp_path)
    lines = [line for ax in fig.axes for line in ax.get_lines()]
    assert len(lines) == 5
    for line in lines:
        assert line.get_marker() not in (None, "", "None", " ") and line.get_markersize() >= 4, line.get_label()
    assert max(_drawn_outside(fig)) <= 1
