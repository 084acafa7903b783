"""Approximate head pose (yaw, pitch, roll in degrees) from a face's 5 landmarks.

Five points (eye centres, nose tip, mouth corners) do not pin a head's pose down the way a dense 3D fit does; this
is a weak-perspective estimate against a mean face, good for "frontal / turned / looking down", not for
gaze. The method:

- **roll** is the angle of the line from the image-left eye to the image-right eye (exact for in-plane rotation;
  positive: turned clockwise as seen in the image).
- The points are turned upright by that angle; then, against :data:`MEAN_FACE` (eyes at x = -/+ D/2, the nose
  tip and the mouth's centre in front of the eyes' plane by ``z_nose`` and ``z_mouth``, in units of the eye
  distance D), a turn by yaw moves the nose tip sideways by ``z sin(yaw)`` while the eye distance shrinks to
  ``D cos(yaw)``, so ``yaw = atan(offset / eye distance / (z_nose - z_mouth y_nose / y_mouth))`` with ``offset`` the
  nose's distance from the line through the eyes' and the mouth's centres (positive: the nose points to the
  image's right). A nod moves the nose tip up against the mouth: with ``q`` = (nose below the eyes) / (mouth
  below the eyes), ``tan(pitch) = (y_nose - q y_mouth) / (z_nose - q z_mouth)`` (positive: looking up).

The mean face: the frontal 2D layout of the 112x112 ArcFace alignment template (insightface: eye distance 35.2
px, nose 20.1 px and mouth 40.7 px below the eyes) with depths from adult anthropometric averages (nasal tip
~30 mm and the mouth's corners ~5 mm in front of the corneas, at an interpupillary distance of 63 mm: Farkas,
"Anthropometry of the Head and Face", 1994). The depths set the scale of yaw and pitch: an error in them
scales the angles, it does not flip or bias them (a frontal face reads 0 whatever they are).

Where it breaks (``reliable`` False): beyond about 45 degrees of yaw one eye and one mouth corner hide and the
detector's landmarks for them are guesses; landmarks that are not in a face's order (the mouth above the eyes,
the eyes on top of each other, the nose outside the face's box) give a pose but no trust.
``benchmarks/head_pose.py`` measures it: roll on faces turned by known angles, yaw on mirrored faces (the
mirror image must read the opposite yaw), the spread on frontal faces, and the synthetic round trip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (x, y, z) of the eye centres, nose tip and mouth corners in units of the eye distance; y down, z towards the
# camera. 2D: the ArcFace template (eyes 35.2 px apart, nose 20.1 px and mouth 40.7 px below them, mouth 29.2 px
# wide); depths: nose tip 30 mm, mouth corners 5 mm in front of the eyes at 63 mm between them.
MEAN_FACE = np.array([[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.571, 0.476], [-0.415, 1.156, 0.079],
                      [0.415, 1.156, 0.079]])
RELIABLE_YAW = 45.0  # degrees: past this the far eye and mouth corner are hidden and their landmarks are guesses
RELIABLE_PITCH = 40.0


@dataclass(frozen=True)
class HeadPose:
    """Degrees: ``yaw`` (positive: the face turns towards the image's right), ``pitch`` (positive: looking up),
    ``roll`` (positive: turned clockwise in the image); ``reliable`` False where the estimate cannot be trusted
    (see the module's text)."""

    yaw: float
    pitch: float
    roll: float
    reliable: bool

    def to_dict(self) -> dict:
        return {"yaw": round(self.yaw, 1), "pitch": round(self.pitch, 1), "roll": round(self.roll, 1),
                "reliable": self.reliable}


def head_pose(landmarks, box=None) -> HeadPose | None:
    """The :class:`HeadPose` of a face from its 5 ``landmarks`` ((x, y) in image pixels: image-left eye,
    image-right eye, nose tip, mouth's left and right corners, as :class:`ferkit.runtime.detect.Face` gives them) and its
    ``box`` (x, y, w, h; only to check the nose lies in it). None without 5 landmarks. Never raises on odd points:
    they give ``reliable=False``."""
    if landmarks is None or len(landmarks) != 5:
        return None
    p = np.asarray(landmarks, np.float64).reshape(5, 2)
    if not np.isfinite(p).all():
        return None
    eye_l, eye_r, nose = p[0], p[1], p[2]
    dx, dy = eye_r - eye_l
    apparent = float(np.degrees(np.arctan2(dy, dx)))
    roll, yaw, pitch = apparent, 0.0, 0.0
    for _ in range(3):  # a turned and nodding head tilts the eye line by atan(tan(yaw) sin(pitch)): take it out
        estimate = _yaw_pitch(p, roll)
        if estimate is None:  # eyes swapped or on top of each other, the mouth above the eyes
            return HeadPose(0.0, 0.0, apparent, False)
        yaw, pitch, ok = estimate
        roll = apparent - float(np.degrees(np.arctan(np.tan(np.radians(yaw)) * np.sin(np.radians(pitch)))))
    if box is not None:
        x, y, w, h = box
        ok = ok and x <= nose[0] <= x + w and y <= nose[1] <= y + h
    ok = bool(ok and abs(yaw) <= RELIABLE_YAW and abs(pitch) <= RELIABLE_PITCH)
    return HeadPose(yaw, pitch, roll, ok)


def _yaw_pitch(p: np.ndarray, roll: float) -> tuple[float, float, bool] | None:
    """Yaw and pitch (degrees) of the 5 points ``p`` turned upright by ``roll`` about the eyes' centre, and whether
    the nose is where a nose can be; None where the points are not in a face's order."""
    c, s = np.cos(np.radians(-roll)), np.sin(np.radians(-roll))
    up = (p - (p[0] + p[1]) / 2) @ np.array([[c, s], [-s, c]])
    eye_dist = float(up[1, 0] - up[0, 0])
    mouth = (up[3] + up[4]) / 2
    if eye_dist <= 1e-6 or mouth[1] <= 1e-6:
        return None
    yn, zn = MEAN_FACE[2, 1:]
    ym, zm = (MEAN_FACE[3, 1:] + MEAN_FACE[4, 1:]) / 2
    # yaw: the nose's offset from the line through the eyes' centre (0, 0) and the mouth's centre, at the nose's height
    offset = float(up[2, 0] - mouth[0] * up[2, 1] / mouth[1])
    yaw = float(np.degrees(np.arctan(offset / eye_dist / (zn - zm * yn / ym))))
    q = float(up[2, 1] / mouth[1])
    pitch = float(np.degrees(np.arctan((yn - q * ym) / (zn - q * zm))))
    return yaw, pitch, bool(up[2, 1] > -0.25 * eye_dist)  # the nose not far above the eyes


def project(yaw: float, pitch: float, roll: float, scale: float = 100.0, centre=(200.0, 200.0)) -> np.ndarray:
    """The 5 landmarks (5, 2) of :data:`MEAN_FACE` turned by ``yaw``, ``pitch`` and ``roll`` (degrees, the
    conventions of :class:`HeadPose`) and seen in weak perspective: the synthetic views the estimate is checked on
    (it recovers them; real faces are not the mean face)."""
    a, b, g = np.radians([yaw, pitch, roll])
    # yaw about the vertical axis (nose towards +x for yaw > 0), pitch about the horizontal one (nose up, -y,
    # for pitch > 0), then roll in the image plane (clockwise for roll > 0, y down)
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    pts = MEAN_FACE @ ry.T @ rx.T
    xy = pts[:, :2]
    rz = np.array([[np.cos(g), -np.sin(g)], [np.sin(g), np.cos(g)]])
    return (xy - xy[:2].mean(0)) @ rz.T * scale + np.asarray(centre)


__all__ = ["HeadPose", "MEAN_FACE", "head_pose", "project"]
