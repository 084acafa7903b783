"""Faces grouped into persons across photos (issue 32, item 5): the descriptor, the grouping, `predict
--group-people` and its summary."""

import csv
import json
import sys

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import people
from ferkit.cli import app

runner = CliRunner()


def make_two_people(folder, per_person=4, seed=0):
    """Photos of two generated identities (the bundled astronaut and Grace Hopper), each at other places, sizes,
    lights and mirrored every other time."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for k in range(per_person):
        for name, face in zip(("astro", "hopper"), people()):
            canvas = np.full((300, 260, 3), int(rng.integers(150, 230)), np.uint8)
            f = cv2.resize(face, None, fx=rng.uniform(0.9, 1.1), fy=rng.uniform(0.9, 1.1))
            f = np.clip((cv2.flip(f, 1) if k % 2 else f) * rng.uniform(0.8, 1.2), 0, 255).astype(np.uint8)
            y, x = rng.integers(0, 300 - f.shape[0]), rng.integers(0, 260 - f.shape[1])
            canvas[y:y + f.shape[0], x:x + f.shape[1]] = f
            cv2.imwrite(str(folder / f"{name}_{k}.jpg"), canvas)
            truth[str(folder / f"{name}_{k}.jpg")] = name
    return truth


@pytest.mark.parametrize("per_person", [4, 8])  # 8 + 8 faces: a fixed switch to the faces' own mean split them
def test_two_generated_identities_are_two_persons(tmp_path, per_person):
    pytest.importorskip("scipy")
    truth = make_two_people(tmp_path / "event", per_person=per_person)
    result = runner.invoke(app, ["predict", str(tmp_path / "event"), "--group-people", "--csv", str(tmp_path / "f.csv"),
                                 "--jsonl", str(tmp_path / "f.jsonl"), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(tmp_path / "f.csv")))
    person_of = {r["path"]: r["person"] for r in rows}
    assert len(set(person_of.values())) == 2
    for name in ("astro", "hopper"):  # each identity is one person, and the two are different persons
        assert len({person_of[p] for p, n in truth.items() if n == name}) == 1
    assert person_of[str(tmp_path / "event" / "astro_0.jpg")] != person_of[str(tmp_path / "event" / "hopper_0.jpg")]
    records = [json.loads(line) for line in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert all("person" in f for r in records for f in r["faces"])
    assert f"person 0: {per_person} face(s) in {per_person} photo(s), mostly" in result.output
    assert f"person 1: {per_person} face(s)" in result.output


def test_descriptor_grouping_and_scores():
    pytest.importorskip("scipy")
    from ferkit.runtime.identity import IdentityEncoder, crops, group, pairwise_scores
    from ferkit.pipeline.recognize import Recognizer

    rec, enc = Recognizer(), IdentityEncoder()
    assert enc.metadata["task"] == "identity" and len(enc.metadata["reference_mean"]) == 1024
    a, b = people()
    views, truth = [], []
    for face, who in ((a, 0), (b, 1)):
        for k in range(3):
            canvas = np.full((300, 300, 3), 190, np.uint8)
            canvas[40 + 10 * k:240 + 10 * k, 60 + 20 * k:210 + 20 * k] = face
            rgb = np.ascontiguousarray(canvas[..., ::-1])
            views.append(crops(rgb, rec.locate(rgb)[:1])[0])
            truth.append(who)
    assert np.stack(views).shape == (6, 112, 112, 3)
    feats = enc.normalise(enc.features(np.stack(views)))
    assert np.allclose(np.linalg.norm(feats, axis=1), 1)
    assert pairwise_scores(truth, group(feats)) == {"pairs": 15, "same_person_pairs": 6, "grouped_pairs": 6,
                                                    "precision": 1.0, "recall": 1.0}
    assert list(group(feats[:1])) == [0] and len(group(np.zeros((0, 1024)))) == 0
    with pytest.raises(ValueError, match="identity crops must be"):
        enc.features(np.zeros((1, 48, 48), np.uint8))


def test_group_people_without_scipy_and_a_damaged_model(tmp_path, monkeypatch):
    import ferkit.runtime.identity as identity

    make_two_people(tmp_path / "event", per_person=1)
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.cluster", None)
    monkeypatch.setitem(sys.modules, "scipy.cluster.hierarchy", None)
    result = runner.invoke(app, ["predict", str(tmp_path / "event"), "--group-people", "--csv", str(tmp_path / "f.csv")])
    assert result.exit_code == 1 and "pip install scipy" in result.output and not (tmp_path / "f.csv").exists()
    monkeypatch.undo()
    fake = tmp_path / "identity"
    fake.mkdir()
    (fake / "faceres-identity.onnx").write_bytes(b"not a model")
    (fake / "manifest.json").write_text(json.dumps({"faceres-identity": {"file": "faceres-identity.onnx",
                                                                         "sha256": "0" * 64}}))
    monkeypatch.setattr(identity, "IDENTITY_DIR", fake)
    from ferkit.weights import WeightsError

    with pytest.raises(WeightsError, match="missing or damaged"):
        identity.IdentityEncoder()


def test_plot_by_person(tmp_path):
    pytest.importorskip("scipy")
    from ferkit.pipeline.charts import DPI

    make_two_people(tmp_path / "event", per_person=2)
    result = runner.invoke(app, ["predict", str(tmp_path / "event"), "--group-people", "--plot",
                                 str(tmp_path / "p.png"), "--no-progress"])
    assert result.exit_code == 0, result.output
    img = cv2.imread(str(tmp_path / "p.png"))
    assert img.shape[:2] == (int(round(3.6 * DPI)), 12 * DPI) and img.std() > 20


def test_video_links_the_tracks_of_one_person(tmp_path):
    """A person who leaves and comes back (A, then B, then A again at a cut): three tracks, two persons."""
    pytest.importorskip("scipy")
    a, b = people()
    writer = cv2.VideoWriter(str(tmp_path / "back.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 20, (480, 240))
    for i in range(60):
        frame = np.full((240, 480, 3), 200, np.uint8)
        x = 40 + int(10 * np.sin(i / 6)) + (150 if i >= 40 else 0)
        frame[20:220, x:x + 150] = b if 20 <= i < 40 else a
        writer.write(frame)
    writer.release()
    result = runner.invoke(app, ["video", str(tmp_path / "back.mp4"), "--group-people", "--summary", "--summary-json",
                                 str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    tracks = json.loads((tmp_path / "s.json").read_text())
    assert [t["track_id"] for t in tracks] == [0, 1, 2]
    assert [t["person"] for t in tracks] == [0, 1, 0]
    assert "track 2 (person 0): 20 frames" in result.output
