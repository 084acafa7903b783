"""``ferkit serve``: an HTTP API and a web page over the photo pipeline (FastAPI on uvicorn).

>>> from ferkit.serve import ServeConfig, create_app
>>> app = create_app(ServeConfig(max_upload_mb=5))     # doctest: +SKIP   (an ASGI app; the model loads here)

Endpoints (OpenAPI at ``/docs``, served without a CDN; the schema at ``/openapi.json``):

- ``POST /v1/predict`` -- one image, as the multipart form field ``file`` or as the raw body: the record
  ``ferkit predict`` writes per image; ``?annotate=1`` answers the annotated PNG instead.
- ``POST /v1/predict/batch`` -- several ``file`` fields: ``{"results": [record, ...]}`` in order; a broken
  member gets its own ``error`` and the others are answered.
- ``POST /v1/stream/{session}`` -- ``session``: 8 to 64 characters of A-Z, a-z, 0-9, ``_`` and ``-``, made up by
  the client (422 otherwise, on ``DELETE`` too) -- one webcam frame of a browser session: faces with a track id and
  probabilities averaged over the track's last frames (the video pipeline's :class:`~ferkit.pipeline.tracking.FrameTracker`,
  one per session, kept in memory for ``session_ttl_s`` after the last frame); ``DELETE`` ends it.
- ``GET /healthz``, ``GET /v1/models``; ``GET /`` is the web page (plain HTML/JS from ``ferkit/web``).

Every error answers JSON ``{"error": "<one line>"}``, never a stack trace: 400 broken image or bad request,
413 body over ``max_upload_mb`` (refused from the declared length before reading, or cut off while
streaming a body of undeclared length), 415 not an image (the content is sniffed from its bytes; names and
declared types are not trusted: a body that is not multipart form data is the image, whatever its
Content-Type), 422 image over ``max_pixels`` or too many files, 408/504 upload or inference over
``timeout_s``. The model loads once per worker process; inference runs on a thread pool bounded by
``concurrency`` (onnxruntime sessions are safe to share between threads).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
from fastapi import Request

from ferkit.service import CONFIG_ENV, ServeConfig, Service

WEB_DIR = Path(__file__).parent / "web"
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
            "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'")
log = logging.getLogger("ferkit.serve")


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _error(status: int, message: str, headers: dict | None = None):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _Guard:
    """Outermost ASGI layer: refuses bodies over the limit (413) -- from the declared Content-Length before
    any of the body reaches the app, else by counting while a body of undeclared length streams in -- and
    adds safe headers to responses.

    Before a 413 is sent, the rest of the body is read and thrown away (at most ``DISCARD_FACTOR`` times the
    limit, for at most ``DISCARD_S`` seconds), as nginx's lingering close does: clients that send the whole
    body before reading the answer (browsers, urllib) then get the 413 instead of a reset connection. A
    client that sends ``Expect: 100-continue`` (curl, for large bodies) is answered before it sends anything.
    """

    DISCARD_FACTOR, DISCARD_S = 4, 10.0

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def _discard(self, receive, seen: int) -> None:
        with anyio.move_on_after(self.DISCARD_S):
            while seen <= self.DISCARD_FACTOR * self.max_bytes:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return
                seen += len(message.get("body", b""))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = f"request body over the {self.max_bytes / 2**20:g} MB upload limit"
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await _error(400, "invalid Content-Length header")(scope, receive, send)
            if int(declared) > self.max_bytes:
                if headers.get(b"expect", b"").lower() != b"100-continue":
                    await self._discard(receive, 0)
                return await _error(413, too_large, {"Connection": "close"})(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    if message.get("more_body", False):
                        await self._discard(receive, seen)
                    raise ApiError(413, too_large)
            return message

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, counted, with_headers)


def _clean_name(name: str | None) -> str | None:
    """An upload's file name as reported back: the last path component, printable, at most 200 characters."""
    if not name:
        return None
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")[:200]
    return name or None


UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}},
    "image/*": {"schema": {"type": "string", "format": "binary"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}
BATCH_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}}}
FRAME_BODY = {"requestBody": {"required": True, "content": {
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}}
ERRORS = {code: {"description": text, "content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}}}}}} for code, text in [
    (400, "broken image or bad request"), (408, "upload not received in time"), (413, "body over the upload limit"),
    (415, "not an image"), (422, "image over the pixel limit, or too many files"), (504, "inference timed out")]}


def create_app(config: ServeConfig | None = None):
    """The ASGI app: loads the model once (in this process) and serves the API and the page."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.middleware.cors import CORSMiddleware
    from fastapi.responses import FileResponse, Response
    from fastapi.staticfiles import StaticFiles
    from fastapi_offline import FastAPIOffline
    from starlette.exceptions import HTTPException

    import ferkit
    from ferkit.core.images import ImageError, NotAnImage, TooManyPixels

    config = config or ServeConfig()
    service = Service(config)
    # A plain thread pool, not an anyio limiter: bounded, and safe whichever event loop awaits it.
    pool = ThreadPoolExecutor(max_workers=config.concurrency or os.cpu_count() or 1, thread_name_prefix="ferkit")
    app = FastAPIOffline(title="ferkit", version=ferkit.__version__, redoc_url=None,
                         description="Facial expression recognition: find each face in a photo and give the "
                                     "probabilities of the 7 FER2013 emotions.")
    app.state.service = service

    @app.exception_handler(ApiError)
    async def _api_error(request, exc: ApiError):
        return _error(exc.status, exc.message)

    @app.exception_handler(HTTPException)
    async def _http_error(request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def _internal_error(request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, "internal server error")

    async def run(fn, *args):
        """``fn(*args)`` on the inference pool, within the timeout, with image errors mapped to statuses."""
        deadline = time.monotonic() + config.timeout_s

        def job():
            if time.monotonic() > deadline:  # its request has already been answered 504: skip the work
                raise TimeoutError
            return fn(*args)

        try:
            with anyio.fail_after(config.timeout_s):
                return await asyncio.wrap_future(pool.submit(job))
        except TimeoutError:
            raise ApiError(504, f"inference took over {config.timeout_s:g} s") from None
        except NotAnImage as exc:
            raise ApiError(415, f"{exc} (accepted: any image format Pillow reads: JPEG, PNG, TIFF, WebP, ...)") \
                from None
        except TooManyPixels as exc:
            raise ApiError(422, str(exc)) from None
        except ImageError as exc:
            raise ApiError(400, str(exc)) from None

    async def read_uploads(request: Request, many: bool) -> list[tuple[bytes, str | None]]:
        """The uploaded images (bytes, file name), read within the timeout."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            with anyio.fail_after(config.timeout_s):
                if ctype == "multipart/form-data":
                    most = config.max_batch if many else 1
                    try:
                        form = await request.form(max_files=most, max_fields=most + 16)
                    except HTTPException as exc:  # the parser stops at the first file over max_files
                        if "Too many files" in str(exc.detail):
                            raise ApiError(422, f"more than {most} files: at most {most} per request" +
                                           ("" if many else " (use /v1/predict/batch for several)")) from None
                        raise
                    try:
                        files = [v for key in ("file", "files") for v in form.getlist(key)]
                        if any(isinstance(v, str) for v in files):
                            raise ApiError(400, "form field 'file' must be a file upload, not text")
                        if not files:
                            raise ApiError(400, "no image: send it in the multipart form field 'file'")
                        return [(await f.read(), _clean_name(f.filename)) for f in files]
                    finally:
                        await form.close()  # spooled uploads are freed now, not when collected
                if many:
                    raise ApiError(415, "a batch is sent as multipart/form-data with one 'file' field per image")
                # any other body is the image itself, whatever its declared type (curl --data-binary says
                # application/x-www-form-urlencoded): the decoder tells from its bytes what it is
                body = await request.body()
        except TimeoutError:
            raise ApiError(408, f"upload not received within {config.timeout_s:g} s") from None
        if not body:
            raise ApiError(400, "empty body: send an image")
        return [(body, None)]

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(WEB_DIR / "index.html", headers={"Content-Security-Policy": PAGE_CSP,
                                                             "X-Frame-Options": "DENY",
                                                             "Cache-Control": "no-cache"})

    @app.get("/healthz", summary="Liveness: the model is loaded and the worker answers")
    async def healthz():
        return {"status": "ok", "model": service.recognizer.classifier.name}

    @app.get("/v1/models", summary="The loaded model, its metadata and accuracy; the detector and limits")
    async def models():
        return service.model_info()

    @app.post("/v1/predict", summary="Faces and emotion probabilities of one image", openapi_extra=UPLOAD_BODY,
              responses={200: {"content": {"image/png": {}}, "description": "the record (JSON), or with "
                                           "annotate=1 the annotated PNG"}, **ERRORS})
    async def predict(request: Request, annotate: bool = False):
        (data, name), = await read_uploads(request, many=False)
        out = await run(service.predict, data, name, annotate)
        return Response(out, media_type="image/png") if annotate else out

    @app.post("/v1/predict/batch", summary="Several images: one record each, errors per image",
              openapi_extra=BATCH_BODY, responses=ERRORS)
    async def predict_batch(request: Request):
        items = await read_uploads(request, many=True)
        items = [(data, name or f"file {i}") for i, (data, name) in enumerate(items)]
        return {"results": await run(service.predict_many, items)}

    @app.post("/v1/stream/{session}", summary="One webcam frame: tracked faces with smoothed probabilities",
              openapi_extra=FRAME_BODY, responses=ERRORS)
    async def stream_frame(session: str, request: Request):
        check_session(session)
        (data, _), = await read_uploads(request, many=False)
        return await run(service.stream_frame, session, data)

    @app.delete("/v1/stream/{session}", summary="End a webcam session (its tracks are forgotten)", responses=ERRORS)
    async def end_stream(session: str):
        check_session(session)  # the same rule as POST: an id POST refuses names no session
        return {"session": session, "ended": service.end_session(session)}

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    if config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=config.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["*"], max_age=600)
    app.add_middleware(_Guard, max_bytes=config.max_upload_bytes)
    return app


def check_port(host: str, port: int) -> None:
    """Raise OSError (one line naming the address) when ``host:port`` cannot be listened on -- in use, or an
    address of no interface of this machine -- so that ``ferkit serve`` fails before it announces itself."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OSError(f"{host}:{port}: cannot listen there ({exc.strerror or exc})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a closed socket's TIME_WAIT is no obstacle
        try:
            probe.bind(address)
        except OSError as exc:
            raise OSError(f"{host}:{port}: cannot listen there ({exc.strerror or exc}); is another server running "
                          "on it? Choose another --port") from None


def check_session(session: str) -> None:
    """A webcam session id is 8 to 64 characters of A-Z, a-z, 0-9, ``_`` and ``-`` (a client makes one up, e.g. a
    random UUID); anything else is answered 422, on every ``/v1/stream/{session}`` route."""
    if not SESSION_ID.match(session):
        raise ApiError(422, "session id: 8 to 64 characters of A-Z, a-z, 0-9, '_' and '-'")


def app_from_env():
    """The app factory each ``--workers`` process calls (config from the environment)."""
    return create_app(ServeConfig.from_env())


def run_server(config: ServeConfig, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
               log_level: str = "info", app=None) -> None:
    """Serve until stopped (what ``ferkit serve`` runs): ``app`` (default: :func:`create_app` of ``config``) in this
    process, or with ``workers`` > 1 that many uvicorn worker processes, each building its own app from ``config``
    (handed over in the environment; ``app`` is then unused). Call :func:`create_app` first to have a bad model
    fail before any worker starts."""
    import uvicorn

    options = dict(host=host, port=port, log_level=log_level, server_header=False, timeout_keep_alive=10)
    if workers == 1:
        uvicorn.run(app if app is not None else create_app(config), **options)
    else:
        os.environ[CONFIG_ENV] = config.to_env()
        uvicorn.run("ferkit.serve:app_from_env", factory=True, workers=workers, **options)
