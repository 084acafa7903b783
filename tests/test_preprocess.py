"""A model's preprocessing is part of the model: one function, declared in the metadata, applied on every path."""

import cv2
import numpy as np
import pytest

from ferkit.runtime import preprocess
from ferkit.pipeline.face_images import SAMPLE_FACE
from ferkit.runtime.classifier import Classifier
from ferkit.weights import read_metadata, shipped_path


def sample_face() -> np.ndarray:
    return cv2.imread(str(SAMPLE_FACE), cv2.IMREAD_GRAYSCALE)


def low_contrast(face: np.ndarray) -> np.ndarray:
    return (face.astype(np.float32) * 0.4 + 90).astype(np.uint8)  # a dull copy: grey levels 90..192


def test_specs_parse_to_canonical_dicts():
    assert preprocess.parse(None) == {"name": "none"}
    assert preprocess.parse("equalize_hist") == {"name": "equalize_hist"}
    assert preprocess.parse("clahe") == {"name": "clahe", "clip_limit": 2.0, "tile_grid": 4}
    assert preprocess.parse("clahe:3:8") == {"name": "clahe", "clip_limit": 3.0, "tile_grid": 8}
    assert preprocess.parse({"name": "clahe", "clip_limit": 3}) == {"name": "clahe", "clip_limit": 3.0, "tile_grid": 4}
    assert preprocess.describe("clahe") == "clahe (clip 2, 4x4 tiles)"
    assert preprocess.of({}) == {"name": "none"}  # models without the key were trained on grey levels as they are
    for bad, message in [("sharpen", "unknown preprocessing"), ("equalize_hist:2", "only clahe takes"),
                         ("clahe:x", "with numbers"), ("clahe:0", "clip_limit must be > 0")]:
        with pytest.raises(ValueError, match=message):
            preprocess.parse(bad)


def test_apply_is_opencv_per_face_and_refuses_floats():
    faces = np.stack([sample_face(), low_contrast(sample_face())])
    eq = preprocess.apply(faces, "equalize_hist")
    assert eq.dtype == np.uint8 and eq.shape == faces.shape
    assert np.array_equal(eq[1], cv2.equalizeHist(faces[1]))
    clahe = preprocess.apply(faces[0], "clahe:2:4")
    assert np.array_equal(clahe, cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply(faces[0]))
    assert np.array_equal(preprocess.apply(faces, "none"), faces)
    with pytest.raises(ValueError, match="uint8"):
        preprocess.apply(faces / 255.0, "equalize_hist")


def test_shipped_equalised_models_declare_it():
    for name in ("seed", "fer-e", "fer-real"):
        for kind in ("safetensors", "onnx"):
            path = shipped_path(name, kind)
            meta = read_metadata(path) if kind == "safetensors" else Classifier(path).metadata
            assert meta["preprocessing"] == {"name": "equalize_hist"}, (name, kind)


def test_an_equalising_model_gives_the_same_answer_for_original_and_equalised_pixels():
    """A model whose preprocessing equalises sees the same input whether or not the caller equalised first;
    a model that does not equalise answers the two differently (so the first check is not vacuous)."""
    face = low_contrast(sample_face())
    pair = np.stack([face, cv2.equalizeHist(face)])
    eq_model = Classifier("fer-e")
    p = eq_model.predict_proba(pair)
    assert np.abs(p[0] - p[1]).max() < 0.02
    from dataclasses import replace

    plain = Classifier("fer-e")
    plain.spec = replace(plain.spec, preprocessing=preprocess.parse("none"))  # the same network, not equalising
    q = plain.predict_proba(pair)
    assert np.abs(q[0] - q[1]).max() > 0.05
    # and the equalising model's answer for the dull face is its answer for the equalised face
    assert np.allclose(p[0], plain.predict_proba(cv2.equalizeHist(face)[None])[0], atol=1e-6)


def test_pytorch_and_onnx_paths_apply_the_same_preprocessing():
    pytest.importorskip("torch")
    from ferkit.analysis.evaluate import load_predictor

    face = low_contrast(sample_face())[None]
    onnx_probs = load_predictor("fer-e")[0](face)
    torch_probs = load_predictor(str(shipped_path("fer-e")))[0](face)
    assert np.allclose(onnx_probs, torch_probs, atol=1e-3)


def test_training_applies_and_declares_its_preprocessing(tiny_csv, tmp_path, tiny_model_name):
    pytest.importorskip("torch")
    from ferkit.data.fer2013 import load_fer2013
    from ferkit.analysis.evaluate import load_predictor
    from ferkit.models import load_model
    from ferkit.train import make_config, predict_proba, train

    cfg = make_config("paper", data=str(tiny_csv), out=str(tmp_path / "run"), model=tiny_model_name, epochs=1,
                      batch_size=64, preprocessing="clahe:3:6")
    train(cfg, progress=False, log=lambda m: None)
    path = tmp_path / "run" / "model.safetensors"
    net = load_model(str(path))
    assert net.ferkit_meta["preprocessing"] == {"name": "clahe", "clip_limit": 3.0, "tile_grid": 6}
    faces = load_fer2013(tiny_csv).split("PublicTest").images[:10]
    norm = net.ferkit_meta["normalization"]
    by_hand = predict_proba(net, preprocess.apply(faces, "clahe:3:6"), norm["mean"], norm["std"])
    assert np.allclose(load_predictor(str(path))[0](faces), by_hand, atol=1e-6)
    with pytest.raises(ValueError, match="unknown preprocessing"):
        make_config("paper", preprocessing="sharpen")


def test_classifier_input_rule_uint8_and_floats_agree_and_others_are_refused():
    from ferkit.runtime.classifier import as_grey_levels

    face = sample_face()
    clf = Classifier()
    ref = clf.predict_proba(face)
    for variant in (face / 255.0, face.astype(np.float32), face.astype(np.int64), (face / 255.0).astype(np.float32)):
        assert np.allclose(clf.predict_proba(variant), ref, atol=1e-6), variant.dtype
    for bad, message in [(face.astype(np.float32) * 300, "0..1"), (face.astype(np.int16) - 10, "0..255"),
                         (np.full((48, 48), np.nan), "NaN"), (face > 100, "not bool")]:
        with pytest.raises(ValueError, match=message):
            clf.predict_proba(bad)
    assert as_grey_levels(np.array([[0.0, 0.5, 1.0]])).tolist() == [[0, 128, 255]]
