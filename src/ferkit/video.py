"""Video and live camera: per-face tracks with stable ids, probabilities averaged over frames per track.

>>> from ferkit import video
>>> for frame in video.stream("clip.mp4"):              # doctest: +SKIP
...     for face in frame.faces:
...         print(frame.frame, face.track_id, face.emotion, face.smoothed[face.emotion])

Tracking (:mod:`ferkit.pipeline.tracking`) matches each detected face to the live tracks by box overlap (IoU) and gates the match on
appearance (cosine similarity of an 8x8 normalised grey thumbnail of the FER crop), so a different
person at the same place -- a cut in the video -- starts a new track; a frame that changes as a whole
(a scene cut) also ends every track. A track not seen for ``max_missing`` frames ends; a face that leaves
and comes back later gets a new id. Smoothing is a sliding mean of the last ``window`` probability
distributions of the same track (still a distribution); ``emotion`` is its argmax.

Cost controls (``ferkit video --detect-every K --classify-every M``): the detector may run on every K-th frame
only, the tracks' boxes carried in between; a tracked face whose crop is still what it was when it was last
classified (mean absolute difference of the two 48x48 crops <= :data:`~ferkit.pipeline.tracking.STABLE_MAD` grey levels)
may keep those probabilities for up to M frames. :class:`~ferkit.core.profiling.StageTimes` measures the time of each
stage (``--profile``).

A file is read as a stream (PyAV, :mod:`ferkit.pipeline.decode`): every frame gets a result, and memory does not grow with
the video's length. Times are the frames' presentation times as the decoder gives them (right for variable frame
rates), phone videos' rotation tags are applied, and each frame keeps its own size: after a resolution change
the boxes are in the new frames' pixels (the CLI warns once).
A live camera never falls behind: a reader thread keeps only the newest frame, and the frames it had to
drop are counted in :attr:`FrameResult.skipped`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ferkit.pipeline.decode import VideoError, open_source  # noqa: F401 - VideoError, open_source: re-exported
from ferkit.core.profiling import StageTimes, timer
from ferkit.pipeline.tracking import FrameTracker, TrackedFace


@dataclass(frozen=True)
class FrameResult:
    frame: int  # index in the source (0-based); for a camera, frames dropped are skipped in the count too
    time_s: float  # presentation time in seconds (the decoder's, so variable frame rates are right); live: since start
    faces: list[TrackedFace] = field(default_factory=list)
    skipped: int = 0  # live sources: frames dropped just before this one because processing was slower
    image: np.ndarray | None = field(default=None, repr=False, compare=False)  # RGB frame, if asked for
    crops: np.ndarray | None = field(default=None, repr=False, compare=False)  # the faces' crops, if asked for

    def rows(self) -> list[dict]:
        """The JSONL rows of this frame: one per face."""
        return [{"frame": self.frame, "time_s": round(self.time_s, 4), **f.to_dict()} for f in self.faces]


def presentation_time(position_s: float | None, index: int, fps: float, previous: float | None) -> float:
    """The time (s) of frame ``index``: its presentation time as the source gives it (PyAV: the frame's own;
    OpenCV: ``CAP_PROP_POS_MSEC`` after reading it), which follows a variable frame rate. Where the source gives
    none -- None, 0 after the first frame, negative, not a number, or not after ``previous`` (the last frame's
    time) -- the frame is placed ``1 / fps`` after the previous one (``index / fps`` for a source without any
    times)."""
    t = float("nan") if position_s is None else float(position_s)
    if np.isfinite(t) and t >= 0 and (index == 0 or t > 0) and (previous is None or t > previous):
        return t
    return index / fps if previous is None else previous + 1.0 / fps


def ended_early(last_s: float | None, expected: int, fps: float) -> bool:
    """Whether a file whose decoder stopped after a frame at ``last_s`` seconds ended before its video stream's
    length (``expected`` frames at ``fps``: :attr:`ferkit.pipeline.decode.FrameSource.frames`). The frame count is an estimate in some
    containers (duration x nominal rate: Matroska/WebM, variable frame rates), so fewer frames than it says is
    not an error: the file is broken only where its frames stop short of the duration, by more than
    0.5 s or 3 frames."""
    if not expected or last_s is None:
        return False
    return last_s + 1.0 / fps < expected / fps - max(0.5, 3.0 / fps)


def stream(source: str | Path | int, *, recognizer=None, window: int = 15, detect_every: int = 1,
           keep_images: bool = False, scene_cut: float = 40.0, info: dict | None = None, classify_every: int = 1,
           times: StageTimes | None = None, keep_crops: bool = False) -> Iterator[FrameResult]:
    """Per-frame results of a video file or a camera index, as they come.

    ``recognizer``: a :class:`ferkit.pipeline.recognize.Recognizer` (default: the default model and detector, with
    ``scales="single"`` as ``ferkit video``: one detection pass per frame, at ``max_side``).
    ``window``: frames in the smoothing window (1: no smoothing). ``detect_every``: run the detector on
    every k-th frame and carry the tracks' boxes in between. ``classify_every``: classify a stable tracked face
    at least every this many frames, reusing its last probabilities in between (see :class:`FrameTracker`; 1:
    every face on every frame). ``times``: a :class:`StageTimes` that receives each stage's time (``decode``
    included). ``keep_crops``: each result carries its faces' crops as the model saw them (``crops``).
    ``scene_cut``: a mean absolute change of the downscaled grey frame above this (0-255) ends all tracks.
    Raises :class:`VideoError` for a source that cannot be opened, has no frames, or breaks off before its video
    stream's length (after yielding every frame it could read; see :func:`ended_early`; an audio track that
    outlasts the video does not count). A file is read by :mod:`ferkit.pipeline.decode`: each frame at its own size
    (boxes are in that frame's pixels, also after a resolution change: the tracks go on, rescaled), ``time_s`` its
    presentation time (:func:`presentation_time`), rotation tags applied. ``info``, if given, receives the
    source's ``fps``, ``frames`` (0 if unknown) and ``live`` once it is opened, and ``size_changes``: a
    ``{"frame", "time_s", "from": [W, H], "to": [W, H]}`` for each resolution change, as it comes.
    """
    from ferkit.pipeline.recognize import Recognizer

    rec = recognizer or Recognizer(scales="single")
    if window < 1 or detect_every < 1:
        raise ValueError(f"window and detect_every must be at least 1, not {window} and {detect_every}")
    if classify_every < 1:
        raise ValueError(f"classify_every must be at least 1, not {classify_every}")
    src = open_source(source)
    live, fps = src.live, src.fps
    expected = 0 if live else src.frames
    if info is not None:
        info.update(fps=fps, frames=expected, live=live, size_changes=[])
    tracker = FrameTracker(rec, window=window, scene_cut=scene_cut, classify_every=classify_every, times=times)
    timed = timer(times)
    start, index, t = time.perf_counter(), -1, None
    try:
        while True:
            with timed("decode"):
                got = src.read()
            if got is None:
                break
            rgb, position, dropped = got
            index += 1 + dropped
            t = time.perf_counter() - start if live else presentation_time(position, index, fps, t)
            was = tracker.size  # the last frame's (H, W): the tracker follows a resolution change itself
            if was is not None and rgb.shape[:2] != was and info is not None:
                info["size_changes"].append({"frame": index, "time_s": round(t, 4), "from": [was[1], was[0]],
                                             "to": [rgb.shape[1], rgb.shape[0]]})
            out = tracker.step(rgb, detect=index % detect_every == 0)
            yield FrameResult(index, t, out, dropped, rgb if keep_images else None,
                              tracker.last_crops if keep_crops else None)
    finally:
        src.close()
    if index < 0:
        raise VideoError(f"{source}: no frames could be read")
    if not live and ended_early(t, expected, fps):
        raise VideoError(f"{source}: stopped after {index + 1} frames, at {t:.2f} s of {expected / fps:.2f} s: "
                         "the rest is unreadable (truncated or broken file)")


class Summary:
    """Per-track statistics accumulated over a stream: duration, dominant emotion, mean probabilities and
    the timeline of the smoothed emotion as runs. Constant memory per track (runs grow only on changes)."""

    def __init__(self, labels: list[str]):
        self.labels, self.tracks = labels, {}
        self.persons: dict[int, int] = {}  # track -> person, where the tracks were linked (run_video's group_people)

    def add(self, frame: FrameResult) -> None:
        for f in frame.faces:
            t = self.tracks.setdefault(f.track_id, {"first_s": frame.time_s, "frames": 0,
                                                    "sum": np.zeros(len(self.labels)), "runs": []})
            t["frames"] += 1
            t["last_s"] = frame.time_s
            t["sum"] += [f.probabilities[k] for k in self.labels]
            if t["runs"] and t["runs"][-1]["emotion"] == f.emotion:
                t["runs"][-1]["end_s"] = frame.time_s
            else:
                t["runs"].append({"emotion": f.emotion, "start_s": frame.time_s, "end_s": frame.time_s})

    def to_dict(self) -> list[dict]:
        out = []
        for tid, t in sorted(self.tracks.items()):
            mean = t["sum"] / t["frames"]
            out.append({"track_id": tid, **({"person": self.persons[tid]} if tid in self.persons else {}),
                        "frames": t["frames"], "start_s": round(t["first_s"], 3),
                        "end_s": round(t["last_s"], 3), "duration_s": round(t["last_s"] - t["first_s"], 3),
                        "dominant_emotion": self.labels[int(mean.argmax())],
                        "mean_probabilities": {k: round(float(v), 4) for k, v in zip(self.labels, mean)},
                        "timeline": [{**r, "start_s": round(r["start_s"], 3), "end_s": round(r["end_s"], 3)}
                                     for r in t["runs"]]})
        return out

    def format(self) -> str:
        lines = []
        for t in self.to_dict():
            runs = ", ".join(f"{r['emotion']} {r['start_s']:.1f}-{r['end_s']:.1f}s" for r in t["timeline"][:8])
            more = f" (+{len(t['timeline']) - 8} more)" if len(t["timeline"]) > 8 else ""
            who = f" (person {t['person']})" if "person" in t else ""
            lines.append(f"track {t['track_id']}{who}: {t['frames']} frames, {t['start_s']:.1f}-{t['end_s']:.1f}s, "
                         f"mostly {t['dominant_emotion']} ({t['mean_probabilities'][t['dominant_emotion']] * 100:.0f}%);"
                         f" {runs}{more}")
        return "\n".join(lines) if lines else "no faces"


def draw_frame(frame: FrameResult, labels: list[str]) -> np.ndarray:
    """A BGR picture of a frame's results: each face's box, track id, smoothed emotion and smoothed bars."""
    from types import SimpleNamespace

    from ferkit.pipeline.annotate import annotate

    shown = [SimpleNamespace(box=f.box, emotion=f.emotion, probabilities=f.smoothed) for f in frame.faces]
    return annotate(frame.image, shown, labels, [f"#{f.track_id} " for f in frame.faces])


class AnnotatedVideo:
    """An MP4 (mp4v) file written frame by frame at a constant ``fps``; the size is taken from the first frame
    (later frames of another size, after a resolution change, are scaled to it).

    Given each frame's presentation time, output frame k shows the last frame due by k / ``fps`` seconds
    (rounded to the nearest place): a variable-frame-rate source keeps its timing, a frame repeated over a
    gap, frames closer together than 1 / ``fps`` thinned, as a constant-rate copy must be."""

    def __init__(self, path: str | Path, fps: float):
        self.path, self.fps, self.writer = Path(path), fps or 30.0, None
        self.start, self.written, self.pending = None, 0, None

    def write(self, bgr: np.ndarray, time_s: float | None = None) -> None:
        """Add ``bgr`` (H, W, 3); ``time_s``: its presentation time in seconds (None: the next place)."""
        if self.writer is None:
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                          (bgr.shape[1], bgr.shape[0]))
            if not self.writer.isOpened():
                raise VideoError(f"{self.path}: cannot write a video here")
            self.start = time_s
            self.size = (bgr.shape[1], bgr.shape[0])
        if (bgr.shape[1], bgr.shape[0]) != self.size:  # the source changed resolution: one file keeps one size
            bgr = cv2.resize(bgr, self.size, interpolation=cv2.INTER_AREA)
        if self.pending is not None:
            place = self.written + 1
            if time_s is not None and self.start is not None:
                place = int(np.floor((time_s - self.start) * self.fps + 0.5))
            while self.written < place:  # the previous frame holds every place until this one's
                self.writer.write(self.pending)
                self.written += 1
        self.pending = bgr
    def close(self) -> None:
        if self.writer is not None:
            if self.pending is not None:
                self.writer.write(self.pending)
                self.pending = None
            self.writer.release()
            self.writer = None


@dataclass
class VideoReport:
    """What :func:`run_video` did: frames read, frames a camera skipped to keep up, the per-track
    :class:`Summary`, seconds taken, and the error that ended it (None when the source ended cleanly)."""

    frames: int
    skipped: int
    summary: Summary
    seconds: float
    error: str | None = None
    size_changes: list[dict] = field(default_factory=list)  # resolution changes, as stream()'s info gives them
    chart: Path | None = None  # the --plot chart, once written

    def warnings(self, source) -> list[str]:
        """One line per kind of thing the user should know that is not an error (a resolution change)."""
        if not self.size_changes:
            return []
        first = self.size_changes[0]
        more = f" (and {len(self.size_changes) - 1} more change(s))" if len(self.size_changes) > 1 else ""
        return [f"{source}: the frame size changes at frame {first['frame']} ({first['time_s']:.2f} s), "
                f"{first['from'][0]}x{first['from'][1]} -> {first['to'][0]}x{first['to'][1]}{more}; boxes are in "
                "each frame's own pixels (an annotated --out video keeps the first size)"]

    @property
    def read_nothing(self) -> bool:
        """The source failed before giving a frame: its error is all there is to say."""
        return bool(self.error) and not self.frames


def has_windows() -> bool:
    """True when this OpenCV can open a window (``--show``): ferkit installs opencv-python-headless, which cannot;
    OpenCV's build information names its GUI backend (``GUI: NONE`` in a headless build)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() not in ("", "NONE")
    return False


NO_WINDOWS = ("--show needs an OpenCV build that can open windows; ferkit installs opencv-python-headless, which "
              "cannot. `ferkit video --camera N --show` (no other outputs) opens `ferkit serve`'s page in your browser "
              "instead (it runs the camera), or write the annotated frames with --out annotated.mp4")


def run_video(source: str | Path | int, recognizer, *, window: int = 15, detect_every: int = 1,
              classify_every: int = 1, out: str | Path | None = None, jsonl: str | os.PathLike | None = None,
              show: bool = False, summary_json: str | Path | None = None,
              times: StageTimes | None = None, crops: str | Path | None = None, crops_every: int = 15,
              plot: str | Path | None = None, group_people: bool = False) -> VideoReport:
    """Track every face of a video file or a camera index (what ``ferkit video`` does on this machine).

    ``out``: an annotated MP4 (boxes, track ids, smoothed emotion and bars; see :class:`AnnotatedVideo`).
    ``jsonl``: one JSON line per face per frame (``"-"``: stdout), flushed frame by frame. ``show``: the annotated
    frames in a window (Esc or q stops). ``summary_json``: the per-track summary as JSON, unless nothing was read.
    ``crops``: a folder that receives each track's face crop, as the model saw it, on the track's first frame and
    every ``crops_every``-th frame of it after (``track<id>_frame<n>.png``; the row names it as ``crop``).
    ``plot``: a PNG of each track's smoothed emotion probabilities over time (:func:`ferkit.pipeline.charts.timeline`;
    needs matplotlib), written at the end unless nothing was read. ``group_people``: once the video has ended,
    tracks that show the same person are linked (:class:`ferkit.runtime.identity.TrackPeople`; needs SciPy): the summary
    gives each track its ``person`` (the rows, written as they come, do not).
    ``window``, ``detect_every``, ``classify_every``: as :func:`stream`. ``times``: a :class:`StageTimes` that
    receives the time of every stage, ``draw``, ``encode`` (the annotated video) and ``write`` (the summary and the
    JSON lines) included.
    A :class:`VideoError` or Ctrl-C does not raise: it ends the run, and its reason is the report's ``error``
    (``"interrupted"`` for Ctrl-C); what was read until then is written. ``jsonl`` is opened at the first frame: a
    source that gives no frame at all (a camera that never opens) leaves an existing file as it was.
    """
    import json

    from ferkit.pipeline.outputs import open_output, save_crop

    sink, close = None, False  # opened at the first frame: a source that never opens leaves an old file as it was
    writer = None
    summary = Summary(recognizer.labels)
    frames, skipped, error = 0, 0, None
    start = time.perf_counter()
    source_info: dict = {}
    timed = timer(times)
    people = None
    if group_people:
        from ferkit.runtime.identity import IdentityEncoder, TrackPeople, need_scipy

        need_scipy()
        people = TrackPeople(IdentityEncoder())
    recorder = None
    if plot is not None:
        from ferkit.pipeline.charts import TimelineRecorder

        recorder = TimelineRecorder()
    try:
        for fr in stream(source, recognizer=recognizer, window=window, detect_every=detect_every,
                         classify_every=classify_every, keep_images=out is not None or show or people is not None,
                         info=source_info, times=times, keep_crops=crops is not None):
            frames += 1
            skipped += fr.skipped
            with timed("write"):
                summary.add(fr)
                if people is not None:
                    people.add(fr.image, fr.faces)
                if recorder is not None:
                    recorder.add(fr)
                rows = fr.rows()
                if crops is not None:
                    for row, crop in zip(rows, fr.crops):  # the track's first frame, then every crops_every-th
                        if (summary.tracks[row["track_id"]]["frames"] - 1) % crops_every == 0:
                            row["crop"] = str(save_crop(Path(crops) / f"track{row['track_id']}_frame{fr.frame:06d}.png",
                                                         crop))
                if jsonl is not None and sink is None:  # written as frames come, so that it can be read live
                    sink, close = open_output(jsonl, pending=False)
                if sink is not None:
                    for row in rows:
                        sink.write(json.dumps(row) + "\n")
                    sink.flush()
            if fr.image is not None and (out is not None or show):
                with timed("draw"):
                    bgr = draw_frame(fr, recognizer.labels)
                if out is not None:
                    if writer is None:
                        writer = AnnotatedVideo(out, source_info.get("fps", 30.0))
                    with timed("encode"):
                        writer.write(bgr, fr.time_s)
                if show:
                    cv2.imshow("ferkit", bgr)
                    if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                        break
    except VideoError as exc:
        error = str(exc)
    except KeyboardInterrupt:
        error = "interrupted"
    finally:
        if writer is not None:
            writer.close()
        if sink is not None and close:
            sink.close()
    if people is not None:
        summary.persons = people.persons()
    report = VideoReport(frames, skipped, summary, time.perf_counter() - start, error,
                         source_info.get("size_changes", []))
    if summary_json is not None and not report.read_nothing:
        Path(summary_json).write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    if recorder is not None and not report.read_nothing:
        from ferkit.pipeline.charts import timeline

        timeline(recorder.tracks, plot, title=f"{source}: " if not isinstance(source, int) else f"camera {source}: ")
        report.chart = Path(plot)
    return report
