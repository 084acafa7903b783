"""Charts of results people would rather look at than read (matplotlib; ``pip install matplotlib`` or the
``train`` extra): a video's emotion timeline per track (``ferkit video --plot``) and the emotion distribution of a
photo folder, per photo or per person (``ferkit predict --plot``).

Colours are fixed per emotion (:data:`COLOURS`) so that charts compare at a glance; every chart says what it
shows in its title and axes, and is saved at :data:`DPI` as PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferkit.core.labels import EMOTIONS

# One colour per emotion, the same in every chart (colour-blind-safe Okabe-Ito hues, neutral grey).
COLOURS = {"angry": "#D55E00", "disgust": "#009E73", "fear": "#CC79A7", "happy": "#E69F00", "sad": "#0072B2",
           "surprise": "#56B4E9", "neutral": "#999999", "uncertain": "#FFFFFF"}
DPI = 110
MAX_TRACKS = 8  # a timeline shows the tracks seen longest, at most this many
MAX_BARS = 40  # a distribution shows at most this many photos (or persons), the ones with most faces first


def need_matplotlib() -> None:
    """Raise ImportError (one line, with the install hint) when matplotlib is missing; before any work."""
    _plt()


def _plt():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("charts need matplotlib: pip install matplotlib (or ferkit[train])") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def timeline(tracks: dict[int, dict], path: str | Path, *, title: str = "") -> Path:
    """A PNG of each track's emotion probabilities over time: one panel per track (the :data:`MAX_TRACKS` seen
    longest), the 7 smoothed probabilities stacked (they sum to 1) against time in seconds. ``tracks``:
    ``{track_id: {"time_s": [...], "probabilities": (T, 7) in EMOTIONS order}}``, as
    :class:`TimelineRecorder` collects them. Returns the path."""
    plt = _plt()
    shown = sorted(tracks, key=lambda t: -len(tracks[t]["time_s"]))[:MAX_TRACKS]
    rows = max(1, len(shown))
    fig, axes = plt.subplots(rows, 1, figsize=(10, 1.6 + 1.7 * rows), dpi=DPI, squeeze=False, sharex=True,
                             layout="constrained")
    for ax, tid in zip(axes[:, 0], sorted(shown)):
        t = np.asarray(tracks[tid]["time_s"])
        p = np.asarray(tracks[tid]["probabilities"])
        ax.stackplot(t, p.T, colors=[COLOURS[e] for e in EMOTIONS], labels=EMOTIONS, linewidth=0)
        ax.set_ylim(0, 1)
        ax.set_xlim(float(t.min()), float(max(t.max(), t.min() + 1e-3)))
        ax.set_ylabel(f"track {tid}")
        ax.set_yticks([0, 0.5, 1])
        top = EMOTIONS[int(p.mean(0).argmax())]
        ax.set_title(f"track {tid}: {len(t)} frames, {t[0]:.1f}-{t[-1]:.1f} s, mostly {top}", fontsize=9, loc="left")
    if not shown:
        axes[0, 0].text(0.5, 0.5, "no faces", ha="center", va="center", transform=axes[0, 0].transAxes)
    axes[-1, 0].set_xlabel("time (s)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLOURS[e]) for e in EMOTIONS]
    fig.legend(handles, EMOTIONS, loc="outside lower center", ncol=7, fontsize=8, frameon=False)
    more = f" (the {len(shown)} seen longest of {len(tracks)})" if len(tracks) > len(shown) else ""
    fig.suptitle(f"{title}emotion over time per track, smoothed probabilities{more}", fontsize=10)
    return _save(fig, path)


class TimelineRecorder:
    """Collects what :func:`timeline` draws from a video's frames (:class:`ferkit.video.FrameResult`): each track's
    times and smoothed probabilities. Memory: 8 numbers per face per frame."""

    def __init__(self):
        self.tracks: dict[int, dict] = {}

    def add(self, frame) -> None:
        for f in frame.faces:
            t = self.tracks.setdefault(f.track_id, {"time_s": [], "probabilities": []})
            t["time_s"].append(frame.time_s)
            t["probabilities"].append([f.smoothed[e] for e in EMOTIONS])


def distribution(groups: dict[str, list[dict[str, float]]], path: str | Path, *, by: str = "photo",
                 title: str = "") -> Path:
    """A PNG of the emotion distribution of groups of faces (``by``: ``photo`` or ``person``): on the left, how many
    faces of all groups have each emotion as their top one; on the right, one bar per group (the
    :data:`MAX_BARS` with most faces) of its faces' mean probabilities, stacked, labelled with the group's name
    and face count. ``groups``: ``{name: [probabilities of each face, {emotion: p}]}``. Returns the path."""
    plt = _plt()
    groups = {k: v for k, v in groups.items() if v}
    names = sorted(groups, key=lambda k: (-len(groups[k]), k))[:MAX_BARS]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, max(3.6, 1.2 + 0.32 * len(names))), dpi=DPI,
                                      width_ratios=[1, 2.2], layout="constrained")
    tops = [max(p, key=p.get) for faces in groups.values() for p in faces]
    counts = [tops.count(e) for e in EMOTIONS]
    left.barh(EMOTIONS[::-1], counts[::-1], color=[COLOURS[e] for e in EMOTIONS[::-1]])
    for y, c in enumerate(counts[::-1]):
        left.text(c, y, f" {c}", va="center", fontsize=8)
    left.set_xlabel("faces (top emotion)")
    left.set_xlim(0, max(counts + [1]) * 1.2)
    left.set_title(f"all {len(tops)} faces", fontsize=9)
    means = np.array([[np.mean([p[e] for p in groups[n]]) for e in EMOTIONS] for n in names]) if names else np.zeros((0, 7))
    ys = np.arange(len(names))[::-1]
    start = np.zeros(len(names))
    for k, e in enumerate(EMOTIONS):
        right.barh(ys, means[:, k], left=start, color=COLOURS[e], label=e, height=0.8)
        start += means[:, k]
    right.set_yticks(ys, [_short(n) + f" ({len(groups[n])})" for n in names], fontsize=8)
    if not names:
        for ax in (left, right):
            ax.text(0.5, 0.5, "no faces", ha="center", va="center", transform=ax.transAxes, fontsize=11)
        left.set_xticks([])
    right.set_xlim(0, 1)
    right.set_xlabel("mean probability of its faces")
    more = f", the {len(names)} with most faces of {len(groups)}" if len(groups) > len(names) else ""
    right.set_title(f"per {by}{more}", fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLOURS[e]) for e in EMOTIONS]
    fig.legend(handles, EMOTIONS, loc="outside lower center", ncol=7, fontsize=8, frameon=False)
    fig.suptitle(f"{title}emotions of {len(tops)} faces in {len(groups)} {by}s", fontsize=10)
    return _save(fig, path)


def _short(name: str, width: int = 28) -> str:
    return name if len(name) <= width else "..." + name[-(width - 3):]


def _save(fig, path: str | Path) -> Path:
    plt = _plt()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


__all__ = ["COLOURS", "TimelineRecorder", "distribution", "need_matplotlib", "timeline"]
