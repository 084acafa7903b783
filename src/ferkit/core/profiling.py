"""Where a pipeline's time goes: wall time per stage, accumulated over frames (``ferkit video --profile``)."""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext


class StageTimes:
    """Wall time per stage of a video pipeline (``decode``, ``detect``, ``classify``, ``draw``, ``encode``,
    ``write``...), in seconds, accumulated over frames: ``with times("detect"): ...``. :meth:`report` gives the
    table ``ferkit video --profile`` prints (ms per frame and share of the wall time, per stage)."""

    ORDER = ("decode", "scene", "detect", "classify", "draw", "encode", "write")

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

    def per_frame_ms(self, frames: int) -> dict[str, float]:
        """Mean ms per frame of each stage seen, in pipeline order."""
        order = [k for k in self.ORDER if k in self.seconds] + sorted(set(self.seconds) - set(self.ORDER))
        return {k: self.seconds[k] * 1000 / max(frames, 1) for k in order}

    def report(self, frames: int, wall_s: float) -> str:
        """A table: per stage ms/frame and share of ``wall_s`` (the loop's wall time), then the rest (tracking,
        bookkeeping, and waiting for a live camera) and the total."""
        lines = [f"{'stage':<10}{'ms/frame':>10}{'share':>8}"]
        for stage, ms in self.per_frame_ms(frames).items():
            lines.append(f"{stage:<10}{ms:>10.2f}{ms * frames / 1000 / max(wall_s, 1e-9):>8.0%}")
        rest = wall_s - sum(self.seconds.values())
        lines.append(f"{'other':<10}{rest * 1000 / max(frames, 1):>10.2f}{rest / max(wall_s, 1e-9):>8.0%}")
        lines.append(f"{'total':<10}{wall_s * 1000 / max(frames, 1):>10.2f}{1:>8.0%}  "
                     f"({frames} frames, {frames / max(wall_s, 1e-9):.1f} frames/s)")
        return "\n".join(lines)


def timer(times: StageTimes | None):
    """``times`` itself, or, without one, a stand-in taking the same ``with timer(None)("detect"):`` and timing
    nothing: code that may be profiled times its stages one way."""
    return times if times is not None else _untimed


def _untimed(stage: str):
    return nullcontext()
