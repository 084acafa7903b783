"""Reading video: files through PyAV (FFmpeg's own API), cameras through OpenCV.

A file gives each frame at its own size with its presentation time, rotation tags applied (phone videos come
upright), and its expected length is the *video stream's* own (:attr:`FrameSource.frames`). OpenCV's
``VideoCapture`` cannot do either: it rescales every frame of a stream whose resolution changes to the first
frame's size (boxes would come out in the wrong units) and reports the container's duration, which includes
an audio track that outlasts the video (a complete Matroska file would read as truncated). A file PyAV cannot
open is tried with OpenCV (e.g. an image sequence pattern) before it is refused.

A camera is read by OpenCV on a thread that keeps only the newest frame (:class:`Camera`), so a slow
consumer never falls behind; the frames it dropped are counted.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import cv2

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET: FFmpeg's chatter is not ferkit's error
import numpy as np

MAX_BAD_PACKETS = 32  # consecutive packets the decoder may refuse before the rest of a file counts as unreadable


class VideoError(ValueError):
    """A video source that cannot be read; the message names the source and the reason."""


class FrameSource:
    """What :func:`ferkit.video.stream` reads. ``fps``: the nominal rate (30 where the source gives none usable);
    ``frames``: the frames the source says it holds (0: unknown, or live); ``live``: a camera."""

    fps: float = 30.0
    frames: int = 0
    live: bool = False

    def read(self) -> tuple[np.ndarray, float | None, int] | None:
        """The next frame as (RGB uint8 (H, W, 3), its presentation time in s or None where the source has none,
        frames dropped just before it), or None at the end."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def _usable_fps(fps: float) -> float:
    return float(fps) if fps and 1.0 <= fps <= 1000.0 else 30.0


class AvFile(FrameSource):
    """A video file decoded by PyAV: frames at their own size, times from the stream, rotation applied, and the
    length of the video stream itself (its frame count, else its duration, else Matroska's per-track DURATION
    tag, else the container's duration) times its rate."""

    def __init__(self, path: str | Path):
        import av

        self.path = str(path)
        self.container = av.open(self.path)
        if not self.container.streams.video:
            self.container.close()
            raise VideoError(f"{path}: holds no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.fps = _usable_fps(float(self.stream.average_rate or self.stream.guessed_rate or 0))
        self.frames = self._expected_frames()
        self._frames = self._decode()

    def _expected_frames(self) -> int:
        s = self.stream
        if s.frames:
            return int(s.frames)
        seconds = None
        if s.duration and s.time_base:
            seconds = float(s.duration * s.time_base)
        else:
            tag = {k.upper(): v for k, v in (s.metadata or {}).items()}.get("DURATION")
            seconds = _hms(tag) if tag else None
        if seconds is None and self.container.duration:
            seconds = self.container.duration / 1e6  # AV_TIME_BASE
        return int(round(seconds * self.fps)) if seconds else 0

    def _decode(self):
        import av

        bad = 0
        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.FFmpegError:  # a damaged container: what came before is kept
                return
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                bad += 1
                if bad > MAX_BAD_PACKETS:
                    return
                continue
            bad = 0
            yield from decoded

    def read(self):
        frame = next(self._frames, None)
        if frame is None:
            return None
        return _rgb(frame), (float(frame.time) if frame.time is not None else None), 0

    def close(self) -> None:
        self.container.close()


def _hms(text: str) -> float | None:
    """Seconds of a Matroska DURATION tag (``HH:MM:SS.fffffffff``), None when it is not one."""
    try:
        h, m, s = str(text).strip().split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    except ValueError:
        return None


def _rgb(frame) -> np.ndarray:
    """A decoded frame as RGB uint8 (H, W, 3), its rotation tag applied. 4:2:0 frames of even size convert with
    OpenCV (faster than swscale here, measured); any other format through FFmpeg."""
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        rgb = cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2RGB_I420)
    else:
        rgb = frame.to_ndarray(format="rgb24")
    turn = int(round(getattr(frame, "rotation", 0) or 0)) % 360  # counter-clockwise degrees, as FFmpeg reports
    if turn == 90:
        rgb = cv2.rotate(rgb, cv2.ROTATE_90_COUNTERCLOCKWISE)
    elif turn == 180:
        rgb = cv2.rotate(rgb, cv2.ROTATE_180)
    elif turn == 270:
        rgb = cv2.rotate(rgb, cv2.ROTATE_90_CLOCKWISE)
    return np.ascontiguousarray(rgb)


def _quiet_capture(target) -> cv2.VideoCapture:
    """cv2.VideoCapture without OpenCV's and FFmpeg's own warnings on stderr (``[ WARN:0@0.1] ...``, ``moov
    atom not found``): a source that cannot be opened gets ferkit's one-line error instead."""
    logging = cv2.utils.logging
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        return cv2.VideoCapture(target)
    finally:
        logging.setLogLevel(level)


class CvFile(FrameSource):
    """A file OpenCV reads where PyAV cannot open it (an image sequence pattern): frames at the first frame's
    size, times from ``CAP_PROP_POS_MSEC``, the container's frame count. A failed read is retried once (the
    decoder may skip a broken packet and go on)."""

    def __init__(self, cap: cv2.VideoCapture):
        self.cap = cap
        if hasattr(cv2, "CAP_PROP_ORIENTATION_AUTO"):  # phone videos: apply the rotation tag, frames come upright
            cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        self.fps = _usable_fps(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def read(self):
        ok, bgr = self.cap.read()
        if not ok and self.cap.grab():
            ok, bgr = self.cap.retrieve()
        if not ok:
            return None
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, 0

    def close(self) -> None:
        self.cap.release()


class Camera(FrameSource):
    """A camera, read on a thread that keeps only the newest frame and counts the frames it dropped."""

    live = True

    def __init__(self, cap: cv2.VideoCapture):
        self.cap, self.lock, self.frame, self.dropped, self.done = cap, threading.Lock(), None, 0, False
        self.fps = _usable_fps(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fresh = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done:
            ok, frame = self.cap.read()
            if not ok:
                with self.lock:
                    self.done = True
                self.fresh.set()
                return
            with self.lock:
                if self.frame is not None:
                    self.dropped += 1
                self.frame = frame
            self.fresh.set()

    def read(self):
        while True:
            with self.lock:
                if self.frame is not None:
                    frame, dropped = self.frame, self.dropped
                    self.frame, self.dropped = None, 0
                    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), None, dropped
                if self.done:
                    return None
                self.fresh.clear()
            self.fresh.wait(0.5)

    def close(self) -> None:
        self.done = True
        self.cap.release()


def open_source(source: str | Path | int) -> FrameSource:
    """A camera index (OpenCV) or a video file (PyAV; OpenCV where PyAV cannot open it). Raises
    :class:`VideoError` naming the source when neither can."""
    if isinstance(source, int):
        cap = _quiet_capture(source)
        if not cap.isOpened():
            raise VideoError(f"camera {source}: cannot be opened")
        return Camera(cap)
    from ferkit.core.images import check_file

    path = check_file(source, "a video", VideoError)
    try:
        return AvFile(path)
    except VideoError:
        raise
    except Exception:  # noqa: BLE001 - any FFmpeg refusal: OpenCV may still read it (image sequences)
        pass
    cap = _quiet_capture(str(path))
    if not cap.isOpened():
        raise VideoError(f"{path}: not a readable video")
    return CvFile(cap)


__all__ = ["AvFile", "Camera", "CvFile", "FrameSource", "VideoError", "open_source"]
