"""``ferkit classify`` and ``ferkit predict``: running a model on face images and photos (the work itself:
:mod:`ferkit.predict`)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ferkit.commands.options import (MinConfidenceOpt, ModelOpt, PhotoScalesOpt, check_outputs, check_ray, fail,
                                     need_extras, open_records)
from ferkit.weights import DEFAULT_DETECTOR


def classify(
    images: Annotated[Optional[list[str]], typer.Argument(
        help="Face crops: files, folders (searched recursively) or globs; each whole image is one face (48x48 grey "
             "as in FER2013; another size is resized). Default: the bundled sample face.")] = None,
    model: ModelOpt = None,
    json_file: Annotated[Optional[str], typer.Option("--json", help="Write all records as one JSON array ('-': stdout).")] = None,
    jsonl_file: Annotated[Optional[str], typer.Option("--jsonl", help="Write one JSON record per line ('-': stdout).")] = None,
    csv_file: Annotated[Optional[str], typer.Option("--csv", help="Write one CSV row per face ('-': stdout).")] = None,
) -> None:
    """Classify face crops (each whole image is one face) and print the 7 probabilities.

    The same as `ferkit predict --no-detect`, with the same records and outputs (schema in docs/photos.md), and a
    table of all 7 probabilities per face. Runs on onnxruntime: no PyTorch needed.
    """
    from ferkit.pipeline.face_images import SAMPLE_FACE
    from ferkit.predict import NoImagesError, PhotoJob
    from ferkit.weights import WeightsError

    failed = 0
    with open_records(json_file, jsonl_file, csv_file) as writer:
        try:
            job = PhotoJob(images, writer, default=SAMPLE_FACE, model=model, detect=False)
        except (NoImagesError, WeightsError) as exc:
            fail(str(exc))
        for result in job:
            if result.error:
                typer.echo(f"error: {result.error}", err=True)
                failed += 1
                continue
            if (result.width, result.height) != (48, 48):
                typer.echo(f"warning: {result.path}: {result.width}x{result.height} image resized to 48x48 and taken "
                           "as one face", err=True)
            if writer.uses_stdout:
                continue
            face = result.faces[0]
            typer.echo(f"{result.path}: {face.emotion}")
            for label, p in sorted(face.probabilities.items(), key=lambda t: -t[1]):
                typer.echo(f"  {label:9s} {p * 100:6.2f}%  {'#' * int(round(p * 40))}")
    if failed:
        raise typer.Exit(1)


def predict(
    paths: Annotated[Optional[list[str]], typer.Argument(
        help="Image files, folders (searched recursively) or glob patterns. Default: the bundled sample photo.")] = None,
    model: ModelOpt = None,
    detector: Annotated[str, typer.Option(help="Face detector: centerface-int8 (int8, the default) or centerface "
                                          "(fp32).")] = DEFAULT_DETECTOR,
    detect: Annotated[bool, typer.Option("--detect/--no-detect",
                                         help="--no-detect: each whole image is one face crop (resized to the model's input).")] = True,
    min_face: Annotated[int, typer.Option(min=0, help="Faces narrower than this many pixels are flagged `small`.")] = 24,
    max_side: Annotated[int, typer.Option(min=32, help="The detector's main pass sees the image downscaled to this "
                                          "many pixels per side (with --scales auto, finer passes find the small "
                                          "faces of large group photos: no need to raise it).")] = 320,
    scales: PhotoScalesOpt = "auto",
    min_confidence: MinConfidenceOpt = 0.0,
    threads: Annotated[int, typer.Option(min=0, help="Threads (0: every core this process may use): photos are "
                                         "decoded and searched for faces on this many at once, one onnxruntime "
                                         "thread each, their faces classified together; records keep the "
                                         "input order.")] = 0,
    json_file: Annotated[Optional[str], typer.Option("--json", help="Write all records as one JSON array ('-': stdout).")] = None,
    jsonl_file: Annotated[Optional[str], typer.Option("--jsonl", help="Write one JSON record per line ('-': stdout).")] = None,
    csv_file: Annotated[Optional[str], typer.Option("--csv", help="Write one CSV row per face ('-': stdout).")] = None,
    annotate: Annotated[Optional[Path], typer.Option(
        help="Write each image with boxes, labels and probability bars into this folder (PNG).")] = None,
    crops: Annotated[Optional[Path], typer.Option(
        help="Write each face as the model saw it (its crop, PNG) into this folder: <photo>_face<i>.png, paths "
             "mirroring the inputs; each face's record names its file (`crop`).")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Draw the emotions of the faces found into this PNG: all "
                                                 "faces' top emotions, and each photo's (with --group-people: each "
                                                 "person's) mean probabilities (needs matplotlib).")] = None,
    group_people: Annotated[bool, typer.Option("--group-people", help="Group the faces of all photos into persons "
                                               "(a face descriptor, used only within these photos): each face gets a "
                                               "`person`, records are written at the end, and a summary per person "
                                               "is printed (needs SciPy).")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar (on stderr).")] = True,
    engine: Annotated[Optional[str], typer.Option(metavar="ray", help="ray: run on Ray Data (pip install 'ferkit[ray]'), one actor "
                                                  "per worker; inputs may also be a .txt or .parquet list of paths. "
                                                  "Needs --out.")] = None,
    address: Annotated[Optional[str], typer.Option(help="--engine ray: the cluster to join (auto, ray://host:port); "
                                                   "default: start Ray on this machine.")] = None,
    num_workers: Annotated[Optional[int], typer.Option(min=1, help="--engine ray: actors (default: one per CPU "
                                                       "Ray offers).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="--engine ray: where the records go (a folder of "
                                                "part files that pandas/pyarrow read as one table).")] = None,
    out_format: Annotated[str, typer.Option("--format", metavar="parquet|jsonl", help="--engine ray: parquet or jsonl.")] = "parquet",
    per_face: Annotated[bool, typer.Option("--per-face", help="--engine ray: one row per face (--csv's columns) "
                                           "instead of one per image.")] = False,
) -> None:
    """Find every face in photos, crop each as the model takes it (its spec) and classify its expression.

    One record per input file, failures included: `path`, `width`, `height`, `faces` (each with `box`
    [x, y, w, h], detector `score`, `emotion`, all 7 `probabilities`, `low_confidence`, `small`, `uncertain`, the 5
    `landmarks`, the head `pose`; `crop` with --crops, `person` with --group-people) and `error` (null or a
    one-line reason). Exit code 1 if any file could not be read; the rest still run.
    """
    from ferkit.predict import NoImagesError, PhotoJob
    from ferkit.weights import WeightsError

    if engine is not None:
        check_ray(engine, out is None or bool(json_file or jsonl_file or csv_file or annotate or crops or plot
                                              or group_people),
                  "--engine ray writes to --out (Parquet or --format jsonl); --json/--jsonl/--csv/--annotate/--crops/"
                  "--plot/--group-people are for the local engine", out, out_format)
        from ferkit.batch import run_photos

        try:
            stats = run_photos(paths or [], out, address=address, num_workers=num_workers, fmt=out_format,
                               per_face=per_face, model=model, detector=detector, max_side=max_side,
                               scales=scales, min_face=min_face, min_confidence=min_confidence)
        except (ImportError, ValueError, WeightsError, OSError) as exc:
            fail(str(exc))
        typer.echo(f"{stats['images']} image(s) -> {stats['rows']} row(s) in {out}, {stats['errors']} error(s) in "
                   f"{stats['seconds']:.1f} s (Ray started in {stats['startup_seconds']:.1f} s)", err=True)
        if stats["errors"]:
            raise typer.Exit(1)
        return
    if out is not None:
        fail("--out is for --engine ray; use --json/--jsonl/--csv", 2)
    from ferkit.pipeline.outputs import OutputError, check_apart
    from ferkit.predict import image_files

    try:  # nothing is created or opened before every output is known to spare every input
        files = image_files(paths)
        annotated = None
        if annotate is not None:
            from ferkit.pipeline.annotate import annotated_paths

            annotated = annotated_paths(annotate, files)
        check_apart(files, {"--json": json_file, "--jsonl": jsonl_file, "--csv": csv_file}, annotated=annotated)
        if crops is not None:
            from ferkit.pipeline.outputs import check_crops_folder, same_file

            check_crops_folder(crops, files, paths)
            if annotate is not None and same_file(crops, annotate):
                raise OutputError(f"{crops}: --crops and --annotate name the same folder (a photo's annotated copy "
                                  "could take a crop's name); give each its own")
    except NoImagesError as exc:
        fail(str(exc))
    except OutputError as exc:
        fail(str(exc), 2)
    check_outputs((annotate, "--annotate", True), (crops, "--crops", True), (plot, "--plot"))
    need_extras(plot, group_people)
    errors, n_faces = 0, 0
    per_photo: dict[str, list] = {}
    with open_records(json_file, jsonl_file, csv_file) as writer:
        try:
            job = PhotoJob([str(f) for f in files], writer, annotate=annotate, crops=crops, progress=progress,
                           group_people=group_people, model=model,
                           detector=detector,
                           threads=threads, min_face=min_face, detect=detect, max_side=max_side,
                           min_confidence=min_confidence, scales=scales)
        except (NoImagesError, WeightsError, KeyError) as exc:
            fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))
        start = time.perf_counter()
        for result in job:
            n_faces += len(result.faces)
            if plot is not None and result.faces:
                per_photo[result.path] = [f.probabilities for f in result.faces]
            if result.error:
                errors += 1
                typer.echo(f"error: {result.error}", err=True)
            elif not writer.uses_stdout:
                if not result.faces:
                    typer.echo(f"{result.path}: no face found")
                for i, face in enumerate(result.faces):
                    best = max(face.probabilities, key=face.probabilities.get)
                    what = (f"uncertain (best guess {best} {face.probabilities[best] * 100:.1f}%)" if face.uncertain
                            else f"{face.emotion} {face.probabilities[best] * 100:.1f}%")
                    flags = "".join([" (low confidence)" if face.low_confidence else "", " (small)" if face.small else ""])
                    typer.echo(f"{result.path}: face {i} at {face.box}: {what}{flags}")
    seconds = time.perf_counter() - start
    if group_people:
        for p in job.people:
            print(f"person {p['person']}: {p['faces']} face(s) in {len(p['photos'])} photo(s), mostly "
                  f"{p['dominant_emotion']} ({p['mean_probabilities'][p['dominant_emotion']] * 100:.0f}%)",
                  file=sys.stderr if writer.uses_stdout else sys.stdout)
    if plot is not None:
        from ferkit.pipeline.charts import distribution

        if group_people:
            chart = distribution(job.person_probabilities(), plot, by="person")
        else:
            chart = distribution(per_photo, plot, by="photo")
        typer.echo(f"chart written to {chart}", err=True)
    read = len(job.files) - errors
    typer.echo(f"{read} image(s), {n_faces} face(s), {errors} error(s) in {seconds:.1f} s "
               f"({read / max(seconds, 1e-9):.1f} images/s)", err=True)
    if errors:
        raise typer.Exit(1)
