import numpy as np
import pytest

from ferkit.analysis.evaluate import compute_metrics, format_report, second_guess_table
from ferkit.core.labels import EMOTIONS

A, D, F, H, S, U, N = range(7)


def probs_for(order_rows):
    """Rows given as (1st, 2nd) class guesses -> probability rows with that ranking."""
    p = np.full((len(order_rows), 7), 0.02)
    for i, (first, second) in enumerate(order_rows):
        p[i, first], p[i, second] = 0.6, 0.28
    return p


def test_second_guess_table_by_hand():
    # true label, (1st guess, 2nd guess)
    rows = [
        (S, (A, S)), (S, (A, S)), (S, (A, H)),   # sad->angry: 2 of 3 have sad 2nd
        (A, (S, A)), (A, (S, N)),                # angry->sad: 1 of 2
        (F, (U, F)),                             # fear->surprise: 1 of 1
        (U, (F, H)),                             # surprise->fear: 0 of 1
        (H, (N, D)),                             # another error, 2nd wrong
        (H, (H, N)), (N, (N, H)),                # correct
    ]
    labels = np.array([r[0] for r in rows])
    table = second_guess_table(probs_for([r[1] for r in rows]), labels)
    got = {(p["true"], p["predicted"]): (p["second_right"], p["errors"]) for p in table["pairs"]}
    assert got == {("sad", "angry"): (2, 3), ("angry", "sad"): (1, 2), ("fear", "surprise"): (1, 1),
                   ("surprise", "fear"): (0, 1)}
    assert table["overall"] == {"errors": 8, "second_right": 4, "share": 0.5}


def test_metrics_by_hand():
    labels = np.array([H, H, S, S, A])
    p = probs_for([(H, N), (S, N), (S, A), (S, F), (S, A)])
    m = compute_metrics(p, labels)
    assert m["n"] == 5
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["top2_accuracy"] == pytest.approx(4 / 5)  # the 2nd happy face has neither guess right
    assert m["confusion"][H][H] == 1 and m["confusion"][H][S] == 1 and m["confusion"][A][S] == 1
    assert m["per_class"]["sad"]["precision"] == pytest.approx(2 / 4)
    assert m["per_class"]["sad"]["recall"] == pytest.approx(1.0)
    assert m["per_class"]["disgust"]["support"] == 0
    text = format_report({"model": "m", "data": "d", "split": "PublicTest", **m})
    assert "accuracy: 60.00%" in text and "top-2 accuracy: 80.00%" in text
    assert all(e in text for e in EMOTIONS)


def test_no_errors_gives_no_share():
    labels = np.array([H, S])
    table = second_guess_table(probs_for([(H, N), (S, A)]), labels)
    assert table["overall"] == {"errors": 0, "second_right": 0, "share": None}
