"""Batch inference on Ray Data: photo archives and many videos, on the engine users already run.

``pip install 'ferkit[ray]'``. Nothing here is imported unless asked for (``ferkit predict --engine ray``,
``ferkit video --engine ray`` or these functions).

- :func:`predict_dataset`: a ``ray.data.Dataset`` with a ``path`` column -> the records of ``ferkit predict``
  (one row per image, faces as a nested list; or one row per face with ``per_face=True``). One actor per
  worker loads the detector and classifier once; batches of paths flow through decode -> detect -> crop ->
  classify. An unreadable file becomes a record with ``error`` set, never a failed job.
- :func:`video_dataset`: a dataset of video paths -> one row per face per frame, as ``ferkit video --jsonl``
  writes them plus a ``video`` column; one video per task (its frames stay in order on one worker). A video
  that cannot be read gives one row with ``error`` set.
- :func:`run_photos` / :func:`run_videos`: what the CLI runs: start or join Ray, build the dataset from
  local paths, write Parquet (a folder of part files, which pandas and pyarrow read as one table) or JSONL.

>>> import ray, ferkit.batch                                      # doctest: +SKIP
>>> ds = ray.data.read_parquet("s3://bucket/paths.parquet")      # doctest: +SKIP  (a `path` column)
>>> ferkit.batch.predict_dataset(ds, num_workers=8).write_parquet("s3://bucket/emotions")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from ferkit.core.labels import EMOTIONS
from ferkit.weights import DEFAULT_DETECTOR


def _require_ray():
    """Raise ImportError with the install hint (not Python's "No module named 'ray'") where Ray Data is missing;
    every entry point calls it before importing ray."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise ImportError("--engine ray needs Ray Data: pip install 'ferkit[ray]'") from None


def schemas() -> dict:
    """The pyarrow schemas of the output rows: ``image`` (one row per image, ``ferkit predict --json``'s record),
    ``face`` (one row per face, ``--csv``'s columns) and ``video`` (``ferkit video --jsonl``'s rows + ``video``)."""
    import pyarrow as pa

    probs = pa.struct([(e, pa.float64()) for e in EMOTIONS])
    marks = pa.list_(pa.list_(pa.float64()))
    pose = pa.struct([("yaw", pa.float64()), ("pitch", pa.float64()), ("roll", pa.float64()), ("reliable", pa.bool_())])
    face = pa.struct([("box", pa.list_(pa.int64())), ("score", pa.float64()), ("emotion", pa.string()),
                      ("probabilities", probs), ("low_confidence", pa.bool_()), ("small", pa.bool_()),
                      ("uncertain", pa.bool_()), ("landmarks", marks), ("pose", pose)])
    image = pa.schema([("schema_version", pa.int64()), ("path", pa.string()), ("width", pa.int64()),
                       ("height", pa.int64()), ("faces", pa.list_(face)), ("error", pa.string())])
    from ferkit.pipeline.outputs import CSV_FIELDS, LANDMARK_FIELDS

    types = {"path": pa.string(), "emotion": pa.string(), "error": pa.string(), "score": pa.float64(), "crop": pa.string(),
             "low_confidence": pa.bool_(), "small": pa.bool_(), "uncertain": pa.bool_(), "pose_reliable": pa.bool_(),
             **{e: pa.float64() for e in EMOTIONS}, **{f: pa.float64() for f in [*LANDMARK_FIELDS, "yaw", "pitch", "roll"]}}
    per_face = pa.schema([(f, types.get(f, pa.int64())) for f in CSV_FIELDS])
    video = pa.schema([("video", pa.string()), ("frame", pa.int64()), ("time_s", pa.float64()),
                       ("track_id", pa.int64()), ("box", pa.list_(pa.int64())), ("score", pa.float64()),
                       ("emotion", pa.string()), ("probabilities", probs), ("smoothed", probs), ("landmarks", marks),
                       ("pose", pose), ("error", pa.string())])
    return {"image": image, "face": per_face, "video": video}


def _per_face_rows(records: list[dict]) -> list[dict]:
    from ferkit.pipeline.outputs import csv_rows

    rows = []
    for record in records:
        for row in csv_rows(record):
            rows.append({k: (None if v == "" else v) for k, v in row.items()})
    return rows


class _Photos:
    """A Ray actor's work: the models load once, in the constructor; each call classifies a batch of paths."""

    def __init__(self, model=None, detector=DEFAULT_DETECTOR, max_side=320, min_face=24, min_confidence=0.0,
                 per_face=False, path_column="path", scales="auto"):
        import pyarrow as pa

        from ferkit.pipeline.recognize import Recognizer

        self.rec = Recognizer(model, detector=detector, threads=1, max_side=max_side, min_face=min_face,
                              min_confidence=min_confidence, scales=scales)
        self.per_face, self.column, self.pa = per_face, path_column, pa
        self.schema = schemas()["face" if per_face else "image"]

    def __call__(self, batch):
        paths = [str(p) for p in batch[self.column].to_pylist()]
        records = [r.to_dict() for r in self.rec.predict_paths(paths)]
        rows = _per_face_rows(records) if self.per_face else records
        return self.pa.Table.from_pylist(rows, schema=self.schema)


def predict_dataset(ds, *, model: str | None = None, detector: str = DEFAULT_DETECTOR, max_side: int = 320,
                    min_face: int = 24, min_confidence: float = 0.0, per_face: bool = False,
                    num_workers: int | None = None, batch_size: int = 16, path_column: str = "path",
                    scales: str = "auto"):
    """``ferkit predict`` as a Ray Data transformation: ``ds`` has a column of image paths (``path_column``);
    returns a dataset of ``ferkit predict`` records (or of per-face rows with ``per_face``). ``num_workers``
    actors (default: as many as Ray gives CPUs), each with one CPU and one inference thread."""
    _require_ray()
    kwargs = {"model": model, "detector": detector, "max_side": max_side, "min_face": min_face,
              "min_confidence": min_confidence, "per_face": per_face, "path_column": path_column, "scales": scales}
    return _map(ds, _Photos, kwargs, batch_size, num_workers)


def analyse_video(path: str, recognizer, *, window: int = 15, detect_every: int = 1, classify_every: int = 1
                  ) -> list[dict]:
    """The rows of one video, as ``ferkit video --jsonl`` writes them plus ``video`` (and ``error``: None, or,
    on a row of its own after the frames read, why the video could not be read to its end)."""
    from ferkit.video import VideoError, stream

    rows = []
    try:
        for fr in stream(path, recognizer=recognizer, window=window, detect_every=detect_every,
                         classify_every=classify_every):
            rows += [{"video": path, **row, "error": None} for row in fr.rows()]
    except (VideoError, ValueError) as exc:
        rows.append({"video": path, "frame": None, "time_s": None, "track_id": None, "box": None, "score": None,
                     "emotion": None, "probabilities": None, "smoothed": None, "error": str(exc)})
    return rows


class _Videos:
    def __init__(self, model=None, max_side=320, window=15, detect_every=1, min_confidence=0.0, scales="single",
                 classify_every=1, detector=DEFAULT_DETECTOR):
        import pyarrow as pa

        from ferkit.pipeline.recognize import Recognizer

        self.rec = Recognizer(model, detector=detector, threads=1, max_side=max_side, min_confidence=min_confidence,
                              scales=scales)
        self.window, self.detect_every, self.classify_every, self.pa = window, detect_every, classify_every, pa
        self.schema = schemas()["video"]

    def __call__(self, batch):
        rows = []
        for path in batch["path"].to_pylist():
            rows += analyse_video(str(path), self.rec, window=self.window, detect_every=self.detect_every,
                                  classify_every=self.classify_every)
        return self.pa.Table.from_pylist(rows, schema=self.schema)


def video_dataset(ds, *, model: str | None = None, max_side: int = 320, window: int = 15, detect_every: int = 1,
                  min_confidence: float = 0.0, num_workers: int | None = None, scales: str = "single",
                  classify_every: int = 1, detector: str = DEFAULT_DETECTOR):
    """``ferkit video`` over a dataset of video paths (column ``path``): one video per task, its rows in frame
    order (see :func:`analyse_video`). ``scales``: as ``ferkit video --scales`` (single by default)."""
    _require_ray()
    kwargs = {"model": model, "max_side": max_side, "window": window, "detect_every": detect_every,
              "min_confidence": min_confidence, "scales": scales, "classify_every": classify_every,
              "detector": detector}
    return _map(ds, _Videos, kwargs, 1, num_workers)


def summarize_video_rows(rows) -> dict[str, list[dict]]:
    """The per-track summary of each video (``ferkit video --summary-json``'s), from its rows in frame order."""
    from ferkit.pipeline.tracking import TrackedFace
    from ferkit.video import FrameResult, Summary

    by_video: dict[str, Summary] = {}
    frames: dict[str, dict[int, FrameResult]] = {}
    for row in rows:
        by_video.setdefault(row["video"], Summary(list(EMOTIONS)))
        if row.get("error") or row.get("frame") is None:
            continue
        face = TrackedFace(row["track_id"], tuple(row["box"]), row["score"], row["emotion"], row["probabilities"],
                           row["smoothed"])
        frames.setdefault(row["video"], {}).setdefault(row["frame"], FrameResult(row["frame"], row["time_s"], []))
        frames[row["video"]][row["frame"]].faces.append(face)
    for video, per_frame in frames.items():
        for index in sorted(per_frame):
            by_video[video].add(per_frame[index])
    return {video: s.to_dict() for video, s in by_video.items()}


def _bound(cls, kwargs: dict):
    """``cls`` with its constructor arguments bound (shipped with the class, not through the object store)."""
    return type(cls.__name__, (cls,), {"__init__": lambda self: cls.__init__(self, **kwargs)})


def _count_errors(ds) -> int:
    import pyarrow as pa

    return int(ds.map_batches(lambda t: pa.table({"bad": [len(t) - t["error"].null_count]}),
                              batch_format="pyarrow").sum("bad") or 0)


def _map(ds, cls, kwargs: dict, batch_size: int, num_workers: int | None):
    """``ds.map_batches`` on a pool of ``cls`` workers (one CPU each), not restarted: Ray Data keeps a pool actor's
    constructor arguments in the object store and, with restarts on, logs an error-level line on every successful
    run (ray-project/ray#53727). A worker that dies fails the run, which reports it. ``max_restarts`` is passed
    the way Ray Data documents (extra remote arguments, deprecated there since 2.5x; without it where refused)."""
    import warnings

    args = dict(batch_size=batch_size, batch_format="pyarrow", compute=_pool(num_workers), num_cpus=1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        try:
            return ds.map_batches(_bound(cls, kwargs), **args, max_restarts=0)
        except TypeError:
            return ds.map_batches(_bound(cls, kwargs), **args)


class _NotErrors(logging.Filter):
    """Drops Ray's notices about choices ferkit makes on purpose (progress bars off, a local cluster's token)."""

    NOTICES = ("Progress bars disabled", "Token authentication is enabled")

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(n in record.getMessage() for n in self.NOTICES)


def _pool(num_workers: int | None):
    import ray.data

    return ray.data.ActorPoolStrategy(size=num_workers or _cpus())


def _cpus() -> int:
    import ray

    return max(1, int(ray.available_resources().get("CPU", 1)))


def init(address: str | None = None, num_cpus: int | None = None) -> float:
    """Join the Ray cluster at ``address`` (``auto``, ``ray://host:port``) or start a local one; returns the
    seconds it took. Output order is kept (rows come out in input order)."""
    _require_ray()
    import ray

    start = time.perf_counter()
    _quiet_notices()
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    _quiet_notices()
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    ray.data.DataContext.get_current().enable_progress_bars = False
    return time.perf_counter() - start


def _quiet_notices() -> None:
    """Attach :class:`_NotErrors` to the handlers of Ray's loggers (each has its own; propagate is off)."""
    quiet = _NotErrors()
    for name in ("ray", "ray.data"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, _NotErrors) for f in handler.filters):
                handler.addFilter(quiet)


def _check_cpus() -> None:
    """Say (once, as a ferkit warning) when the cluster has no free CPU, so the job waits for one; then keep Ray
    Data's own copy of that warning quiet: it also fires after every successful ``materialize()``, when the
    finished pool still holds its CPUs (a false alarm on every run)."""
    import ray
    from ray.util.debug import log_once

    if not ray.available_resources().get("CPU"):
        logging.getLogger("ferkit.batch").warning("the Ray cluster has no free CPU: the job waits until one is free")
    log_once("cpu_warning")  # the key ray.data.Dataset._execute warns under


def input_paths(inputs: list[str]) -> list[str]:
    """Local inputs -> paths: files, folders and globs as ``ferkit predict`` expands them, a ``.txt`` file with
    one path per line, or a ``.parquet`` file with a ``path`` column."""
    from ferkit.core.images import find_images

    out: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.suffix == ".txt" and p.is_file():
            out += [line.strip() for line in p.read_text().splitlines() if line.strip()]
        elif p.suffix == ".parquet" and p.exists():
            import pyarrow.parquet as pq

            table = pq.read_table(p)
            if "path" not in table.column_names:
                raise ValueError(f"{p}: a Parquet list of inputs needs a `path` column; it has "
                                 f"{', '.join(table.column_names)}")
            out += [str(v) for v in table.column("path").to_pylist()]
        else:
            out += [str(f) for f in find_images([item])]
    return out


def check_out(out: str | os.PathLike, fmt: str) -> None:
    """Refuse, before any work, an output folder that holds files already (they would mix with the new parts) and
    an unknown format."""
    if fmt not in ("parquet", "jsonl"):
        raise ValueError(f"unknown format {fmt!r}; expected parquet or jsonl")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out}: exists and is not an empty folder; the output is a new folder of part files")


def _write(ds, out: Path, fmt: str) -> None:
    if fmt == "parquet":
        ds.write_parquet(str(out))
    elif fmt == "jsonl":
        ds.write_json(str(out))
    else:
        raise ValueError(f"unknown format {fmt!r}; expected parquet or jsonl")


def run_photos(inputs: list[str], out: str | os.PathLike, *, address: str | None = None,
               num_workers: int | None = None, fmt: str = "parquet", per_face: bool = False, **options) -> dict:
    """Classify every face in the photos of ``inputs`` on Ray and write the records to ``out``; returns counts."""
    _require_ray()
    import ray

    check_out(out, fmt)
    paths = input_paths(inputs)
    startup = init(address)
    if not paths:
        raise ValueError("no image files found in: " + ", ".join(map(str, inputs)))
    start = time.perf_counter()
    _check_cpus()
    batches = -(-len(paths) // options.get("batch_size", 16))  # no more workers than batches to give them
    ds = predict_dataset(ray.data.from_items([{"path": p} for p in paths]), per_face=per_face,
                         num_workers=min(num_workers or _cpus(), batches), **options).materialize()
    _write(ds, Path(out), fmt)
    errors = _count_errors(ds)
    return {"images": len(paths), "rows": ds.count(), "errors": errors, "seconds": time.perf_counter() - start,
            "startup_seconds": startup}


def run_videos(inputs: list[str], out: str | os.PathLike, *, summary_json: str | os.PathLike | None = None,
               address: str | None = None, num_workers: int | None = None, fmt: str = "parquet", **options) -> dict:
    """Track and classify the faces of every video in ``inputs`` on Ray (one video per task); write the rows to
    ``out`` and the per-track summaries (by video) to ``summary_json``; returns counts."""
    _require_ray()
    import ray

    check_out(out, fmt)
    videos = [str(v) for v in inputs]
    startup = init(address)
    start = time.perf_counter()
    _check_cpus()
    ds = video_dataset(ray.data.from_items([{"path": v} for v in videos]),
                       num_workers=min(num_workers or _cpus(), max(1, len(videos))), **options).materialize()
    _write(ds, Path(out), fmt)
    failed = {row["video"]: row["error"] for row in ds.select_columns(["video", "error"]).iter_rows()
              if row["error"] is not None}
    if summary_json is not None:
        summaries = summarize_video_rows(ds.iter_rows())
        Path(summary_json).write_text(json.dumps(summaries, indent=2) + "\n")
    return {"videos": len(videos), "rows": ds.count(), "failed": failed, "seconds": time.perf_counter() - start,
            "startup_seconds": startup}


__all__ = ["analyse_video", "check_out", "init", "input_paths", "predict_dataset", "run_photos", "run_videos", "schemas",
           "summarize_video_rows", "video_dataset"]
