"""``ferkit serve``: the HTTP API and web page on the photo pipeline (the service itself: :mod:`ferkit.serve`)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ferkit.commands.options import MinConfidenceOpt, ModelOpt, PhotoScalesOpt, fail
from ferkit.weights import DEFAULT_DETECTOR


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface -- anyone who can "
                                      "reach this machine can then use it).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (each loads the model once).")] = 1,
    model: ModelOpt = None,
    detector: Annotated[str, typer.Option(help="Face detector: centerface-int8 (int8, the default) or centerface "
                                          "(fp32).")] = DEFAULT_DETECTOR,
    max_side: Annotated[int, typer.Option(min=32, help="The detector's main pass sees the image downscaled to this "
                                          "many pixels per side (see --scales).")] = 320,
    scales: PhotoScalesOpt = "auto",
    min_face: Annotated[int, typer.Option(min=0, help="Faces narrower than this many pixels are flagged `small`.")] = 24,
    min_confidence: MinConfidenceOpt = 0.0,
    threads: Annotated[int, typer.Option(min=0, help="onnxruntime threads per inference.")] = 1,
    concurrency: Annotated[int, typer.Option(min=0, help="Inferences at once per worker (0: one per CPU core).")] = 0,
    max_upload_mb: Annotated[float, typer.Option(min=0.001, help="Largest request body; larger gets 413.")] = 20.0,
    max_pixels: Annotated[int, typer.Option(min=1, help="Largest image in pixels; larger gets 422.")] = 50_000_000,
    max_batch: Annotated[int, typer.Option(min=1, help="Most images in one /v1/predict/batch request.")] = 32,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds allowed to receive an upload (408), and again to "
                                           "classify it (504).")] = 30.0,
    cors_origin: Annotated[Optional[list[str]], typer.Option(
        help="Allow browser pages from this origin (repeatable; '*' for any). Default: none (same origin only).")] = None,
    window: Annotated[int, typer.Option(min=1, help="Webcam mode: frames averaged per face (5: 1 s at the page's "
                                        "default 5 frames/s).")] = 5,
    log_level: Annotated[str, typer.Option(help="uvicorn log level: critical, error, warning, info, debug.")] = "info",
) -> None:
    """Serve the HTTP API and the web page (photo upload and live webcam) on the photo pipeline.

    Open http://HOST:PORT/ in a browser; the API is documented at /docs. POST /v1/predict takes one image
    (multipart field `file`, or the raw body) and answers the record `ferkit predict --json` writes per image
    (`?annotate=1`: the annotated PNG); POST /v1/predict/batch takes several; GET /healthz, GET /v1/models.
    Errors answer JSON {"error": ...}: 400 broken image, 413 too large, 415 not an image, 422 too many pixels.
    """
    from ferkit.serve import ServeConfig, create_app, run_server
    from ferkit.weights import WeightsError

    config = ServeConfig(model=model, detector=detector, max_side=max_side, scales=scales, min_face=min_face,
                         min_confidence=min_confidence, threads=threads,
                         concurrency=concurrency, max_upload_mb=max_upload_mb, max_pixels=max_pixels,
                         max_batch=max_batch, timeout_s=timeout, cors_origins=list(cors_origin or []), window=window)
    from ferkit.serve import check_port

    try:
        check_port(host, port)  # a busy port fails here, before anything says "running"
        checked = create_app(config)  # loads the model: a bad --model fails here, not in each worker
    except (WeightsError, KeyError, OSError) as exc:
        fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))
    typer.echo(f"ferkit serve: http://{host}:{port}/ (API docs at /docs), {workers} worker(s)", err=True)
    app = checked if workers == 1 else None
    del checked  # with several workers each loads its own copy; this one only checked that it loads
    run_server(config, host=host, port=port, workers=workers, log_level=log_level, app=app)
