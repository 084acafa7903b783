"""What one ``ferkit serve`` worker holds, apart from HTTP: its :class:`ServeConfig`, the recogniser (loaded once)
and the webcam sessions, each a :class:`~ferkit.pipeline.tracking.FrameTracker`. :mod:`ferkit.serve` puts it on the web."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import numpy as np

from ferkit.weights import DEFAULT_DETECTOR

CONFIG_ENV = "FERKIT_SERVE_CONFIG"  # how `ferkit serve --workers N` hands the config to each worker


@dataclass
class ServeConfig:
    """Everything ``ferkit serve`` can be told; the defaults are the CLI's."""

    model: str | None = None  # shipped model name or .onnx file (None: the default model)
    detector: str = DEFAULT_DETECTOR
    max_side: int = 320  # the detector's main pass sees the image downscaled to this many pixels per side
    scales: str = "auto"  # auto: and the finer/coarser passes the image needs (faces from ~20 px); single: one pass
    min_face: int = 24
    min_confidence: float = 0.0  # abstain below this top probability (photos: raw; webcam: smoothed)
    threads: int = 1  # onnxruntime threads per inference
    concurrency: int = 0  # inferences running at once per worker (0: one per CPU core)
    max_upload_mb: float = 20.0  # per request body
    max_pixels: int = 50_000_000
    max_batch: int = 32  # images per batch request
    timeout_s: float = 30.0  # for reading the upload, and again for the inference
    cors_origins: list[str] = field(default_factory=list)  # empty: no CORS headers (same origin only)
    window: int = 5  # webcam smoothing: frames averaged per track (1 s at the page's default 5 frames/s)
    max_sessions: int = 64  # webcam sessions kept per worker (least recently used dropped)
    session_ttl_s: float = 60.0  # a webcam session is forgotten this long after its last frame

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeConfig:
        return cls(**json.loads(os.environ.get(CONFIG_ENV, "{}")))


class _Session:
    def __init__(self, tracker):
        self.tracker, self.lock, self.frames, self.last = tracker, threading.Lock(), 0, time.monotonic()


class Service:
    """The state one worker holds: the recogniser (loaded once) and the webcam sessions."""

    def __init__(self, config: ServeConfig):
        from ferkit.pipeline.recognize import Recognizer

        self.config = config
        self.recognizer = Recognizer(config.model, detector=config.detector, threads=config.threads,
                                     min_face=config.min_face, max_side=config.max_side,
                                     min_confidence=config.min_confidence, scales=config.scales)
        self.sessions: OrderedDict[str, _Session] = OrderedDict()
        self.sessions_lock = threading.Lock()

    def decode(self, data: bytes, name: str) -> np.ndarray:
        from ferkit.core.images import decode_image

        return decode_image(data, name, max_pixels=self.config.max_pixels)

    def predict(self, data: bytes, name: str | None, annotate: bool = False):
        """The ``ferkit predict`` record of one upload, or the annotated PNG bytes."""
        from dataclasses import replace

        rgb = self.decode(data, name or "upload")
        result = replace(self.recognizer.predict(rgb, color="RGB"), path=name)
        if not annotate:
            return result.to_dict()
        import cv2

        from ferkit.pipeline.annotate import annotate as draw

        _, png = cv2.imencode(".png", draw(rgb, result.faces, self.recognizer.labels))
        return png.tobytes()

    def predict_many(self, items: list[tuple[bytes, str]]) -> list[dict]:
        """One record per upload, in order; an unreadable one carries its own ``error``."""
        from ferkit.core.images import ImageError
        from ferkit.pipeline.recognize import ImageResult

        out = []
        for data, name in items:
            try:
                out.append(self.predict(data, name))
            except ImageError as exc:
                out.append(ImageResult(name, None, None, [], str(exc)).to_dict())
        return out

    def stream_frame(self, session_id: str, data: bytes) -> dict:
        """Track and smooth the faces of the next frame of a webcam session."""
        from ferkit.pipeline.tracking import FrameTracker

        rgb = self.decode(data, f"frame of session {session_id}")
        now = time.monotonic()
        with self.sessions_lock:
            for sid in [s for s, v in self.sessions.items() if now - v.last > self.config.session_ttl_s]:
                del self.sessions[sid]
            session = self.sessions.get(session_id)
            if session is None:
                session = _Session(FrameTracker(self.recognizer, window=self.config.window))
                self.sessions[session_id] = session
                while len(self.sessions) > self.config.max_sessions:
                    self.sessions.popitem(last=False)
            self.sessions.move_to_end(session_id)
            session.last = now
        with session.lock:  # a session's frames are tracked one after the other
            faces = session.tracker.step(rgb)
            session.frames += 1
            frame = session.frames - 1
        return {"session": session_id, "frame": frame, "width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
                "window": self.config.window, "faces": [f.to_dict() for f in faces]}

    def end_session(self, session_id: str) -> bool:
        with self.sessions_lock:
            return self.sessions.pop(session_id, None) is not None

    def model_info(self) -> dict:
        """What ``GET /v1/models`` tells any client: names and figures, never a path of this machine (the model's
        file, its training data, the command that made it stay private)."""
        clf = self.recognizer.classifier
        meta, spec = clf.metadata, clf.spec
        sources = [{k: v for k, v in src.items() if k in ("name", "kind", "weight", "train_faces", "val_faces",
                                                          "val_accuracy")} for src in meta.get("sources") or []]
        pretrained = {k: v for k, v in (meta.get("pretrained") or {}).items()
                      if k in ("name", "package", "version", "license", "origin", "training_data")}
        return {"model": {"name": clf.name, "arch": meta.get("arch"), "labels": clf.labels,
                          "input_size": [spec.size, spec.size], "channels": spec.channels, "framing": spec.framing,
                          "precision": spec.precision, "accuracy": meta.get("accuracy"),
                          "temperature": clf.temperature, "tta": clf.tta, "sources": sources,
                          **({"pretrained": pretrained} if pretrained else {})},
                "detector": {"name": self.config.detector, "max_side": self.config.max_side,
                             "scales": self.config.scales, "min_face": self.config.min_face},
                "limits": {"max_upload_mb": self.config.max_upload_mb, "max_pixels": self.config.max_pixels,
                           "max_batch": self.config.max_batch, "timeout_s": self.config.timeout_s},
                "webcam": {"window": self.config.window, "session_ttl_s": self.config.session_ttl_s}}
