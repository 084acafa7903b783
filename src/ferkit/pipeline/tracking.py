"""Faces followed from frame to frame: each detected face is matched to the live tracks by box overlap (IoU),
gated on appearance (cosine similarity of an 8x8 normalised grey thumbnail of the FER crop), so a different
person at the same place starts a new track; a frame that changes as a whole (a scene cut) ends every track. A
track not seen for ``max_missing`` frames ends. Smoothing is a sliding mean of the last ``window`` probability
distributions of the same track. Used by :mod:`ferkit.video` and by ``ferkit serve``'s webcam sessions."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from ferkit.runtime.detect import Face, iou
from ferkit.core.profiling import StageTimes, timer
from ferkit.runtime.pose import HeadPose, head_pose
from ferkit.pipeline.recognize import UNCERTAIN, landmark_fields


@dataclass(frozen=True)
class TrackedFace:
    track_id: int
    box: tuple[int, int, int, int]  # x, y, w, h in frame pixels
    score: float  # detector confidence of the last detection of this track
    emotion: str  # argmax of `smoothed`, or "uncertain" where its top value is under the recogniser's min_confidence
    probabilities: dict[str, float]  # this frame's own (raw) probabilities
    smoothed: dict[str, float]  # mean over the track's last `window` frames
    landmarks: tuple[tuple[float, float], ...] | None = None  # the 5 landmarks (x, y) in frame pixels
    pose: HeadPose | None = None  # approximate head pose from the landmarks (ferkit.runtime.pose)

    def to_dict(self) -> dict:
        return {"track_id": self.track_id, "box": list(self.box), "score": round(self.score, 4),
                "emotion": self.emotion, "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
                "smoothed": {k: round(v, 4) for k, v in self.smoothed.items()},
                **landmark_fields(self.landmarks, self.pose)}


def thumbnail(crop: np.ndarray) -> np.ndarray:
    """Appearance descriptor of a 48x48 face crop: 8x8, zero mean, unit norm. Coarse on purpose: a
    few pixels of box jitter between frames keep it above 0.8, while a different face drops it to ~0.5."""
    v = cv2.resize(crop, (8, 8), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    v -= v.mean()
    return v / (np.linalg.norm(v) + 1e-6)


# A tracked face is "stable" while its 48x48 crop differs from the last classified one by at most this mean absolute
# difference (grey levels). Measured on the bundled face: a 2-px shift of the box 8.3, the mouth turned upside down
# 6.7 (probabilities moved by 0.81), the eyes turned 5.3; a blurred mouth only 1.7 (0.36): classify_every bounds that.
STABLE_MAD = 3.0


@dataclass
class _Track:
    id: int
    face: Face
    look: np.ndarray
    history: deque
    missing: int = 0
    probs: np.ndarray | None = None  # the probabilities of its last classified crop
    probs_crop: np.ndarray | None = None  # that crop (48x48 uint8)
    reused: int = 0  # frames since then that reused them


class Tracker:
    """Greedy IoU matching gated on appearance; tracks end after ``max_missing`` unmatched frames."""

    def __init__(self, *, min_iou: float = 0.3, min_similarity: float = 0.65, max_missing: int = 10,
                 window: int = 15):
        self.min_iou, self.min_similarity, self.max_missing, self.window = min_iou, min_similarity, max_missing, window
        self.tracks: list[_Track] = []
        self.next_id = 0

    def reset(self) -> None:
        """End every track (a scene cut)."""
        self.tracks = []

    def rescale(self, sx: float, sy: float) -> None:
        """Scale the live tracks' boxes and landmarks by (``sx``, ``sy``): the stream changed resolution (the same
        scene at another size), so each track goes on in the new frames' pixels."""
        from dataclasses import replace

        for t in self.tracks:
            x, y, w, h = t.face.box
            marks = None if t.face.landmarks is None else tuple((px * sx, py * sy) for px, py in t.face.landmarks)
            t.face = replace(t.face, box=(x * sx, y * sy, w * sx, h * sy), landmarks=marks)

    def update(self, faces: list[Face], looks: list[np.ndarray]) -> list[_Track]:
        """Assign each face to a track (new or continued); returns the tracks in the order of ``faces``."""
        pairs = []
        for ti, track in enumerate(self.tracks):
            for fi, face in enumerate(faces):
                overlap = iou(track.face.box, face.box)
                if overlap >= self.min_iou and float(track.look @ looks[fi]) >= self.min_similarity:
                    pairs.append((overlap, ti, fi))
        assigned: dict[int, _Track] = {}
        used = set()
        for _, ti, fi in sorted(pairs, reverse=True):
            if ti in used or fi in assigned:
                continue
            used.add(ti)
            track = self.tracks[ti]
            track.face, track.missing = faces[fi], 0
            look = 0.7 * track.look + 0.3 * looks[fi]  # follows slow changes (expression, light)
            track.look = look / (np.linalg.norm(look) + 1e-6)
            assigned[fi] = track
        for ti, track in enumerate(self.tracks):
            if ti not in used:
                track.missing += 1
        self.tracks = [t for t in self.tracks if t.missing <= self.max_missing]
        for fi, face in enumerate(faces):
            if fi not in assigned:
                track = _Track(self.next_id, face, looks[fi], deque(maxlen=self.window))
                self.next_id += 1
                self.tracks.append(track)
                assigned[fi] = track
        return [assigned[fi] for fi in range(len(faces))]


class FrameTracker:
    """One video's state: tracks, their smoothing windows and scene-cut detection. :meth:`step` takes the
    next RGB frame and gives its tracked, smoothed faces. Used by :func:`ferkit.video.stream` and by ``ferkit serve``'s
    webcam sessions (one FrameTracker per browser session).

    ``classify_every``: a tracked face is classified at least every this many frames; in between, while its
    crop stays as it was when it was last classified (mean absolute difference <= :data:`STABLE_MAD` grey
    levels), its last probabilities are reused (1, the default: every face on every frame). ``times``: a :class:`StageTimes`
    that receives the ``scene``, ``detect`` and ``classify`` time of every step."""

    def __init__(self, recognizer, *, window: int = 15, scene_cut: float = 40.0, classify_every: int = 1,
                 times: StageTimes | None = None):
        if window < 1:
            raise ValueError(f"window must be at least 1 frame, not {window}")
        if classify_every < 1:
            raise ValueError(f"classify_every must be at least 1 frame, not {classify_every}")
        self.rec, self.scene_cut, self.classify_every = recognizer, scene_cut, classify_every
        self.tracker = Tracker(window=window)
        self.previous: np.ndarray | None = None
        self.size: tuple[int, int] | None = None  # (H, W) of the last frame
        self.last_crops: np.ndarray | None = None  # the crops the model saw in the last step, one per face returned
        self.times = times
        self._timed = timer(times)
        self.classified = 0  # faces sent to the classifier so far (the rest reused a stable track's probabilities)

    def step(self, rgb: np.ndarray, *, detect: bool = True) -> list[TrackedFace]:
        """``detect=False`` carries the live tracks' boxes instead of running the detector; with no live track
        the detector runs anyway. Every face is classified unless ``classify_every`` lets a stable track keep
        its last probabilities."""
        rec, labels = self.rec, self.rec.labels
        size = rgb.shape[:2]
        if self.size is not None and size != self.size:  # a resolution change: the tracks go on in the new pixels
            self.tracker.rescale(size[1] / self.size[1], size[0] / self.size[0])
        self.size = size
        with self._timed("scene"):
            small = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (64, 48), interpolation=cv2.INTER_AREA)
            small = small.astype(np.int16)
            if self.previous is not None and float(np.abs(small - self.previous).mean()) > self.scene_cut:
                self.tracker.reset()
            self.previous = small
        with self._timed("detect"):
            if detect or not self.tracker.tracks:
                faces = rec.locate(rgb)
            else:  # carry the live tracks' boxes to this frame
                faces = [t.face for t in self.tracker.tracks if t.missing == 0]
        with self._timed("classify"):
            crops = rec.crops(rgb, faces)
            looks = [thumbnail(c) for c in crops]
            tracks = self.tracker.update(faces, looks)
            fresh = [i for i, (track, crop) in enumerate(zip(tracks, crops)) if not self._stable(track, crop)]
            probs = [track.probs for track in tracks]
            if fresh:
                new = rec.classifier.predict_proba(crops[fresh])
                self.classified += len(fresh)
                for i, p in zip(fresh, new):
                    probs[i] = p
                    tracks[i].probs, tracks[i].probs_crop, tracks[i].reused = p, crops[i], 0
        self.last_crops = crops
        out = []
        for face, track, p in zip(faces, tracks, probs):
            track.history.append(p)
            mean = np.mean(track.history, axis=0)
            x, y, w, h = face.box
            top = int(mean.argmax())
            emotion = UNCERTAIN if mean[top] < getattr(rec, "min_confidence", 0.0) else labels[top]
            out.append(TrackedFace(track.id, (int(round(x)), int(round(y)), int(round(w)), int(round(h))),
                                   float(face.score), emotion,
                                   {k: float(v) for k, v in zip(labels, p)},
                                   {k: float(v) for k, v in zip(labels, mean)},
                                   face.landmarks, head_pose(face.landmarks, face.box)))
        return out

    def _stable(self, track: _Track, crop: np.ndarray) -> bool:
        """Whether ``track`` may keep its last probabilities this frame (and count one more reuse)."""
        if self.classify_every == 1 or track.probs is None or track.reused + 1 >= self.classify_every:
            return False
        if float(np.abs(track.probs_crop.astype(np.int16) - crop).mean()) > STABLE_MAD:
            return False
        track.reused += 1
        return True
