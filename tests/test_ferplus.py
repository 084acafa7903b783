"""FER+ labels: read beside the FER2013 CSV, aligned by row, as majority labels or soft vote distributions."""

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import make_faces, write_csv
from ferkit.cli import app
from ferkit.data.fer2013 import DataError, load_fer2013
from ferkit.data.ferplus import FERPLUS_COLUMNS, relabel
from ferkit.core.labels import EMOTIONS

runner = CliRunner()
# FER2013 label -> FER+ column
COLUMN_OF = {0: "anger", 1: "disgust", 2: "fear", 3: "happiness", 4: "sadness", 5: "surprise", 6: "neutral"}


def write_ferplus(path, votes, usage, names=None):
    names = names if names is not None else [f"fer{i:07d}.png" for i in range(len(votes))]
    with open(path, "w") as f:
        f.write("Usage,Image name," + ",".join(FERPLUS_COLUMNS) + "\n")
        for v, u, n in zip(votes, usage, names):
            f.write(f"{u},{n}," + ",".join(str(int(x)) for x in v) + "\n")
    return path


def votes_for(label, n=8, second="neutral", m=2):
    v = dict.fromkeys(FERPLUS_COLUMNS, 0)
    v[COLUMN_OF[label]] += n
    v[second] += m
    return [v[c] for c in FERPLUS_COLUMNS]


@pytest.fixture
def pair(tmp_path):
    """A FER2013 CSV of 350 rows and an aligned FER+ file whose votes agree with the labels (8 of 10)."""
    images, labels = make_faces(350)
    usage = ["Training"] * 280 + ["PublicTest"] * 70
    csv_path = write_csv(tmp_path / "fer2013.csv", images, labels, usage)
    write_ferplus(tmp_path / "fer2013new.csv", [votes_for(int(y)) for y in labels], usage)
    return csv_path, labels, usage


def test_majority_and_votes_on_hand_made_rows(tmp_path):
    images, _ = make_faces(6)
    labels = np.array([0, 1, 2, 3, 4, 5])
    usage = ["Training"] * 6
    csv_path = write_csv(tmp_path / "fer2013.csv", images, labels, usage)
    col = FERPLUS_COLUMNS.index
    rows = np.zeros((6, 10), int)
    rows[0, [col("happiness"), col("neutral")]] = [6, 4]            # clear majority: happy
    rows[1, [col("sadness"), col("anger")]] = [5, 5]                # tie: no majority
    rows[2, [col("contempt"), col("disgust")]] = [6, 4]             # top vote is contempt
    rows[3, [col("unknown"), col("NF"), col("fear")]] = [5, 3, 2]   # top vote unknown; votes: fear only
    rows[4, [col("surprise"), col("fear"), col("contempt")]] = [5, 3, 2]
    # row 5: dropped by FER+ (empty image name), no votes
    write_ferplus(tmp_path / "fer2013new.csv", rows, usage, names=[f"fer{i}.png" for i in range(5)] + [""])
    data = load_fer2013(csv_path)

    major = relabel(data, "ferplus-majority")
    assert major.labels.tolist() == [EMOTIONS.index("happy"), EMOTIONS.index("surprise")]
    assert np.array_equal(major.images[1], data.images[4])

    votes = relabel(data, "ferplus-votes")
    assert len(votes) == 5  # only the row FER+ dropped has no emotion vote
    t = votes.targets
    assert t.shape == (5, 7) and np.allclose(t.sum(1), 1)
    assert np.allclose(t[0], np.eye(7)[3] * 0.6 + np.eye(7)[6] * 0.4)
    assert np.allclose(t[1], np.eye(7)[4] * 0.5 + np.eye(7)[0] * 0.5)
    assert np.allclose(t[2], np.eye(7)[1])  # contempt votes left out, the rest renormalised
    assert np.allclose(t[3], np.eye(7)[2])  # unknown and not-a-face votes left out
    assert np.allclose(t[4], np.eye(7)[5] * 5 / 8 + np.eye(7)[2] * 3 / 8)
    assert votes.labels.tolist() == [3, 0, 1, 2, 5]  # argmax, ties to the earlier label

    mixed = relabel(data, "mixed")
    assert len(mixed) == 6 and np.array_equal(mixed.labels, labels)  # nothing dropped, FER2013's labels kept
    m = mixed.targets
    assert m.shape == (6, 7) and np.allclose(m.sum(1), 1)
    assert np.allclose(m[0], 0.5 * np.eye(7)[0] + 0.5 * t[0])  # half the FER2013 label, half the votes
    assert np.allclose(m[4], 0.5 * np.eye(7)[4] + 0.5 * t[4])
    assert np.allclose(m[5], np.eye(7)[5])  # no emotion vote: the FER2013 label alone
    assert (m[np.arange(6), labels] >= m.max(1)).all()  # no emotion outweighs the FER2013 label
    assert relabel(data, "fer2013") is data


def test_full_layout_with_dropped_rows_lines_up_by_row(tmp_path):
    """Microsoft's full file: one row per FER2013 row, rows FER+ dropped have an empty image name."""
    images, labels = make_faces(20)
    usage = ["Training"] * 14 + ["PublicTest"] * 6
    csv_path = write_csv(tmp_path / "fer2013.csv", images, labels, usage)
    names = [("" if i in (2, 15) else f"fer{i:07d}.png") for i in range(20)]
    # a dropped row may still carry numbers in Microsoft's file: they are ignored
    votes = [votes_for(int(y)) for y in labels]
    write_ferplus(tmp_path / "fer2013new.csv", votes, usage, names)
    major = relabel(load_fer2013(csv_path), "ferplus-majority")
    assert len(major) == 18
    kept = [i for i in range(20) if i not in (2, 15)]
    assert np.array_equal(major.labels, labels[kept]) and np.array_equal(major.images, images[kept])
    assert (major.usage == "PublicTest").sum() == 5


def test_misaligned_files_are_refused(tmp_path, pair):
    csv_path, labels, usage = pair
    data = load_fer2013(csv_path)
    short = write_ferplus(tmp_path / "short.csv", [votes_for(int(y)) for y in labels[:-1]], usage[:-1])
    with pytest.raises(DataError, match=r"349 rows, but .* has 350: the FER\+ file must have one row per row"):
        relabel(data, "ferplus-votes", short)
    shifted = write_ferplus(tmp_path / "shifted.csv", [votes_for(int(y)) for y in labels],
                            ["Training"] * 279 + ["PublicTest"] * 71)
    with pytest.raises(DataError, match="row 281: Usage 'PublicTest', but row 281 of .* is 'Training': the files are "
                                        "not aligned"):
        relabel(data, "ferplus-majority", shifted)
    bad = tmp_path / "bad.csv"
    bad.write_text("Usage,Image name,neutral\nTraining,a.png,3\n")
    with pytest.raises(DataError, match="missing column"):
        relabel(data, "ferplus-votes", bad)
    with pytest.raises(DataError, match="no such file"):
        relabel(data, "ferplus-votes", tmp_path / "missing.csv")
    with pytest.raises(DataError, match="unknown label source"):
        relabel(data, "ferplus")


def test_train_on_votes_and_evaluate_on_the_majority(pair, tmp_path, tiny_model_name):
    csv_path, labels, _ = pair
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(csv_path), "--model", tiny_model_name, "--out", str(out),
                                 "--labels", "ferplus-votes", "--epochs", "12", "--batch-size", "32", "--lr", "0.003",
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    from ferkit.weights import read_metadata

    meta = read_metadata(out / "model.safetensors")
    assert meta["label_source"] == "ferplus-votes" and meta["config"]["labels"] == "ferplus-votes"
    result = runner.invoke(app, ["evaluate", "--data", str(csv_path), "--model", str(out / "model.safetensors"),
                                 "--labels", "ferplus-majority", "--json", "-"])
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.output)
    assert report["labels"] == "ferplus-majority" and report["n"] == 70
    assert report["accuracy"] > 0.3  # learnt from the votes (chance: 0.14)
    result = runner.invoke(app, ["evaluate", "--data", str(csv_path), "--model", str(out / "model.safetensors"),
                                 "--labels", "ferplus-majority", "--ferplus", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1 and "nope.csv: no such file" in result.output


def test_train_refuses_unknown_labels(pair, tmp_path):
    csv_path, _, _ = pair
    result = runner.invoke(app, ["train", "--data", str(csv_path), "--out", str(tmp_path / "r"), "--labels", "votes"])
    assert result.exit_code == 1 and "unknown labels 'votes'" in result.output
