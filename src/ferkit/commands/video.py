"""``ferkit video``: a video file or a camera through the tracker, on this machine or on Ray; the live preview."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ferkit.commands.options import (MinConfidenceOpt, ModelOpt, VideoScalesOpt, check_outputs, check_ray, fail,
                                     need_extras)
from ferkit.weights import DEFAULT_DETECTOR


def video(
    sources: Annotated[Optional[list[Path]], typer.Argument(
        help="A video file (anything OpenCV/FFmpeg reads); several with --engine ray.")] = None,
    camera: Annotated[Optional[int], typer.Option(min=0, help="Read camera N instead of a file (live: frames are "
                                                  "skipped, never queued, when processing is slower).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write an annotated video (MP4): boxes, track ids, "
                                                "smoothed emotion and probability bars.")] = None,
    jsonl: Annotated[Optional[str], typer.Option("--jsonl", help="One JSON line per face per frame, flushed as it "
                                                 "goes ('-': stdout).")] = None,
    summary: Annotated[bool, typer.Option("--summary", help="Print per-track duration, dominant emotion, mean "
                                          "probabilities and the emotion timeline (printed anyway when no other "
                                          "output is asked for).")] = False,
    summary_json: Annotated[Optional[Path], typer.Option(help="Write the per-track summary as JSON.")] = None,
    crops: Annotated[Optional[Path], typer.Option(
        help="Write each track's face crop, as the model saw it, into this folder (track<id>_frame<n>.png) on the "
             "track's first frame and every --crops-every frames after; the row names it (`crop`).")] = None,
    crops_every: Annotated[int, typer.Option(min=1, help="--crops: frames of a track between two crops.")] = 15,
    plot: Annotated[Optional[Path], typer.Option(help="Draw each track's smoothed emotion probabilities over time "
                                                 "into this PNG (needs matplotlib).")] = None,
    group_people: Annotated[bool, typer.Option("--group-people", help="Link the tracks that show the same person "
                                               "(a face that left and came back): the summary gives each track its "
                                               "person (needs SciPy; used only within this video).")] = False,
    window: Annotated[int, typer.Option(min=1, help="Frames averaged per track (sliding window; 1: no smoothing).")] = 15,
    detect_every: Annotated[int, typer.Option(min=1, help="Run the face detector every k-th frame; the tracker carries "
                                              "the boxes in between.")] = 1,
    classify_every: Annotated[int, typer.Option(min=1, help="Classify a tracked face at least every k-th frame; in "
                                                "between, while its 48x48 crop stays within 3 grey levels (mean "
                                                "absolute difference) of the last classified one, its last "
                                                "probabilities are reused (1: every face on every frame).")] = 1,
    profile: Annotated[bool, typer.Option("--profile", help="Print the time per frame of each stage (decode, scene "
                                          "check, detect, classify, draw, encode, write, and the rest as other) at "
                                          "the end, on stderr.")] = False,
    model: ModelOpt = None,
    detector: Annotated[str, typer.Option(help="Face detector: centerface-int8 (int8, the default) or centerface "
                                          "(fp32).")] = DEFAULT_DETECTOR,
    max_side: Annotated[int, typer.Option(min=32, help="Detect on the frame downscaled to this many pixels per side.")] = 320,
    scales: VideoScalesOpt = "single",
    min_confidence: MinConfidenceOpt = 0.0,
    threads: Annotated[int, typer.Option(min=0, help="onnxruntime threads (0: all cores).")] = 1,
    show: Annotated[bool, typer.Option("--show", help="Show the annotated frames in a window (an OpenCV build with "
                                       "windows). With the shipped opencv-python-headless: --camera --show opens "
                                       "`ferkit serve`'s page in your browser instead (the browser's camera, boxes "
                                       "and bars, the page's own settings); with a file or other outputs it is "
                                       "refused.")] = False,
    engine: Annotated[Optional[str], typer.Option(metavar="ray", help="ray: many videos on Ray Data (pip install "
                                                  "'ferkit[ray]'), one video per task; rows go to --rows, "
                                                  "summaries to --summary-json.")] = None,
    address: Annotated[Optional[str], typer.Option(help="--engine ray: the cluster to join (auto, ray://host:port).")] = None,
    num_workers: Annotated[Optional[int], typer.Option(min=1, help="--engine ray: actors (default: one per CPU).")] = None,
    rows: Annotated[Optional[Path], typer.Option(help="--engine ray: the per-face-per-frame rows (--jsonl's, plus "
                                                 "`video`), a new folder of part files.")] = None,
    out_format: Annotated[str, typer.Option("--format", metavar="parquet|jsonl", help="--engine ray: parquet or jsonl.")] = "parquet",
) -> None:
    """Track every face through a video or a live camera and average its probabilities over frames.

    Faces keep an id while they stay in view (a different person at the same place, or a scene cut, starts
    a new track; a face that leaves and comes back gets a new id). Every frame of a file gets a result.
    The detector runs at one scale by default (--scales single, to keep up with 30 frames/s); --scales auto
    also finds faces down to ~20 px in large frames, as `predict` does, at a cost on every detected frame
    (pair it with --detect-every).
    """
    from ferkit.pipeline.recognize import Recognizer
    from ferkit.video import StageTimes, run_video
    from ferkit.weights import WeightsError

    if engine is not None:
        check_ray(engine, not sources or camera is not None or rows is None or bool(out or jsonl or show or summary
                                                                                    or crops or plot or group_people),
                  "--engine ray takes video files and writes --rows (and --summary-json); --camera, --out, --jsonl, "
                  "--show, --summary, --crops, --plot and --group-people are for one video on the local engine", rows,
                  out_format)
        from ferkit.batch import run_videos

        check_outputs((summary_json, "--summary-json"))
        try:
            stats = run_videos([str(v) for v in sources], rows, summary_json=summary_json, address=address,
                               num_workers=num_workers, fmt=out_format, model=model, detector=detector,
                               max_side=max_side, scales=scales, window=window, detect_every=detect_every,
                               classify_every=classify_every, min_confidence=min_confidence)
        except (ImportError, ValueError, OSError) as exc:
            fail(str(exc))
        for reason in stats["failed"].values():
            typer.echo(f"error: {reason}", err=True)
        typer.echo(f"{stats['videos']} video(s) -> {stats['rows']} row(s) in {rows}, {len(stats['failed'])} failed, "
                   f"in {stats['seconds']:.1f} s (Ray started in {stats['startup_seconds']:.1f} s)", err=True)
        if stats["failed"]:
            raise typer.Exit(1)
        return
    if sources and len(sources) > 1:
        fail("one video at a time (several with --engine ray)", 2)
    source = sources[0] if sources else None
    if (source is None) == (camera is None):
        fail("give a video file or --camera N (one of them)")
    if show:
        from ferkit.video import NO_WINDOWS, has_windows

        if not has_windows():
            if camera is None or any(v is not None for v in (out, jsonl, summary_json, crops, plot)) or summary:
                fail(NO_WINDOWS, 2)
            _browser_preview(model=model, detector=detector, max_side=max_side, scales=scales,
                             min_confidence=min_confidence)
            return
    from ferkit.pipeline.outputs import OutputError, check_apart

    try:
        check_apart([source] if source is not None else [],
                    {"--out": out, "--jsonl": jsonl, "--summary-json": summary_json})
        if crops is not None:
            from ferkit.pipeline.outputs import check_crops_folder

            check_crops_folder(crops, [source] if source is not None else [])
    except OutputError as exc:
        fail(str(exc), 2)
    check_outputs((out, "--out"), (jsonl, "--jsonl"), (summary_json, "--summary-json"), (crops, "--crops", True),
                  (plot, "--plot"))
    need_extras(plot, group_people)
    try:
        rec = Recognizer(model, detector=detector, threads=threads, max_side=max_side, min_confidence=min_confidence,
                         scales=scales)
    except (WeightsError, KeyError) as exc:
        fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))
    times = StageTimes() if profile else None
    report = run_video(camera if camera is not None else source, rec, window=window, detect_every=detect_every,
                       classify_every=classify_every, out=out, jsonl=jsonl, show=show, summary_json=summary_json,
                       times=times, crops=crops, crops_every=crops_every, plot=plot, group_people=group_people)
    for line in report.warnings(source if camera is None else f"camera {camera}"):
        typer.echo(f"warning: {line}", err=True)
    nothing_else = out is None and jsonl is None and summary_json is None and not show
    if (summary or nothing_else) and not report.read_nothing:  # with no output asked for, the summary is the result
        print(report.summary.format(), file=sys.stderr if jsonl == "-" else sys.stdout)
    note = f", {report.skipped} skipped to keep up" if camera is not None else ""
    if not report.read_nothing:
        typer.echo(f"{report.frames} frame(s), {len(report.summary.tracks)} track(s) in {report.seconds:.1f} s "
                   f"({report.frames / max(report.seconds, 1e-9):.1f} frames/s){note}", err=True)
        if times is not None:
            typer.echo(times.report(report.frames, report.seconds), err=True)
        if report.chart is not None:
            typer.echo(f"chart written to {report.chart}", err=True)
    if report.error == "interrupted":  # Ctrl-C: the complete records so far are written, as predict does
        typer.echo("interrupted", err=True)
        raise typer.Exit(130)
    if report.error:
        fail(report.error)


def _browser_preview(**settings) -> None:
    """`video --camera N --show` where OpenCV has no windows (the shipped headless build): `ferkit serve`'s page,
    which runs the browser's camera with boxes and bars, on this machine (127.0.0.1, the first free port from 8000),
    opened in the browser. Ctrl-C stops it."""
    import webbrowser

    from ferkit.serve import ServeConfig, check_port, create_app, run_server
    from ferkit.weights import WeightsError

    port = None
    for candidate in range(8000, 8020):
        try:
            check_port("127.0.0.1", candidate)
            port = candidate
            break
        except (OSError, ValueError):
            continue
    if port is None:
        fail("no free port from 8000 to 8019 on 127.0.0.1 for the preview page")
    config = ServeConfig(**settings)  # the page's own smoothing window (5 frames at its 5 frames/s)
    try:
        app = create_app(config)
    except (WeightsError, KeyError, ValueError) as exc:
        fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))
    url = f"http://127.0.0.1:{port}/"
    typer.echo(f"this OpenCV has no windows: the preview runs in your browser at {url} (its page uses the "
               "browser's camera: allow it there); Ctrl-C stops", err=True)
    webbrowser.open(url)
    run_server(config, host="127.0.0.1", port=port, log_level="warning", app=app)
    raise typer.Exit(130)  # the server returns only when stopped (Ctrl-C): as a stopped video, exit code 130
