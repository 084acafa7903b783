"""Small generated data sets: FER2013-style CSVs and image folders, good and broken."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def make_faces(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n learnable 48x48 faces: the label sets the brightness of a band, the rest is noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 7
    images = rng.integers(0, 256, size=(n, 48, 48)).astype(np.uint8)
    images[:, 10:20, :] = (labels * 36)[:, None, None]
    return images, labels


def write_csv(path: Path, images: np.ndarray, labels: np.ndarray, usage: list[str] | None = None) -> Path:
    usage = usage or ["Training"] * len(labels)
    with open(path, "w") as f:
        f.write("emotion,pixels,Usage\n")
        for img, y, u in zip(images, labels, usage):
            f.write(f"{y},{' '.join(map(str, img.ravel()))},{u}\n")
    return path


def people() -> tuple[np.ndarray, np.ndarray]:
    """Two real faces, 150x200 BGR: the bundled astronaut and matplotlib's Grace Hopper (both public domain)."""
    import cv2
    from matplotlib import cbook

    from ferkit.pipeline.face_images import SAMPLE_PHOTO

    a = cv2.imread(str(SAMPLE_PHOTO))
    b = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    return cv2.resize(a[30:350, 120:360], (150, 200)), cv2.resize(b[80:420, 150:400], (150, 200))


def group_photo(n: int = 2) -> np.ndarray:
    """A 240-px high BGR picture of ``n`` people side by side (alternating the two of :func:`people`)."""
    faces = people()
    frame = np.full((240, 40 + 190 * n, 3), 200, np.uint8)
    for i in range(n):
        frame[20:220, 40 + 190 * i:190 + 190 * i] = faces[i % 2]
    return frame


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FERKIT_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def tiny_csv(tmp_path) -> Path:
    """280 Training rows and 70 PublicTest rows."""
    images, labels = make_faces(350)
    usage = ["Training"] * 280 + ["PublicTest"] * 70
    return write_csv(tmp_path / "tiny.csv", images, labels, usage)


@pytest.fixture(scope="session")
def tiny_model_name() -> str:
    """A small registered family so training tests take seconds (the registry is global, so once)."""
    from torch import nn

    from ferkit.models import _REGISTRY, register_model

    def tiny(num_classes: int = 7) -> nn.Module:
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4), nn.Conv2d(8, 16, 3, padding=1),
                             nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.2), nn.Linear(64, num_classes))

    if "tiny-test" not in _REGISTRY:
        register_model("tiny-test", tiny)
    return "tiny-test"
