"""The HTTP API, in process: records like `ferkit predict`, errors as JSON with the right status, limits."""

import asyncio
import io
import json
import threading
import time

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from conftest import group_photo
from ferkit.pipeline.face_images import SAMPLE_PHOTO
from ferkit.cli import app as cli
from ferkit.pipeline.recognize import Recognizer
from ferkit.serve import ServeConfig, _Guard, create_app

PHOTO = SAMPLE_PHOTO.read_bytes()


def encode(bgr: np.ndarray, ext: str = ".jpg") -> bytes:
    return cv2.imencode(ext, bgr)[1].tobytes()


def client(**config) -> TestClient:
    return TestClient(create_app(ServeConfig(**config)), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def api() -> TestClient:
    return client()


def test_predict_gives_the_same_record_as_ferkit_predict(api, tmp_path):
    expected = Recognizer().predict(SAMPLE_PHOTO).to_dict()
    r = api.post("/v1/predict", files={"file": ("astronaut.jpg", PHOTO, "image/jpeg")})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == {**expected, "path": "astronaut.jpg"}
    raw = api.post("/v1/predict", content=PHOTO, headers={"Content-Type": "image/jpeg"})  # the raw body works too
    assert raw.status_code == 200 and raw.json() == {**expected, "path": None}
    assert len(expected["faces"]) == 1 and expected["faces"][0]["emotion"] == "happy"


def test_annotate_returns_the_drawn_png(api):
    r = api.post("/v1/predict?annotate=1", files={"file": ("a.jpg", PHOTO, "image/jpeg")})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    drawn = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    original = cv2.imdecode(np.frombuffer(PHOTO, np.uint8), cv2.IMREAD_COLOR)
    assert drawn.shape == original.shape and np.abs(drawn.astype(int) - original).max() > 100


def test_no_face_and_several_faces(api):
    blank = api.post("/v1/predict", files={"file": ("wall.png", encode(np.full((240, 320, 3), 180, np.uint8), ".png"))})
    assert blank.status_code == 200 and blank.json()["faces"] == [] and blank.json()["error"] is None
    group = api.post("/v1/predict", files={"file": ("group.jpg", encode(group_photo(3)))})
    faces = group.json()["faces"]
    assert group.status_code == 200 and len(faces) == 3
    xs = sorted(f["box"][0] for f in faces)
    assert all(b - a > 100 for a, b in zip(xs, xs[1:], strict=False))  # three people, 190 px apart
    assert all(abs(sum(f["probabilities"].values()) - 1) < 1e-3 for f in faces)


def test_any_format_predict_reads_is_accepted_and_sniffed_not_trusted(api):
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(PHOTO, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    for fmt in ("TIFF", "PNG", "WEBP", "BMP"):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, fmt)
        # the name and declared type lie: the content decides
        r = api.post("/v1/predict", files={"file": ("photo.txt", buf.getvalue(), "text/plain")})
        assert r.status_code == 200 and len(r.json()["faces"]) == 1, (fmt, r.text)


@pytest.mark.parametrize("body, ctype, status, message", [
    (b"hello, I am text", "image/jpeg", 415, "not a readable image"),
    (PHOTO[: len(PHOTO) // 3], "image/jpeg", 400, "broken image"),
    (b'{"image": 1}', "application/json", 415, "upload: not a readable image"),
    (b"some words", "text/plain", 415, "upload: not a readable image"),
    (b"file=just+text", "application/x-www-form-urlencoded", 415, "upload: not a readable image"),
    (b"", "image/jpeg", 400, "empty body"),
])
def test_bad_uploads_get_a_json_error(api, body, ctype, status, message):
    r = api.post("/v1/predict", content=body, headers={"Content-Type": ctype})
    assert r.status_code == status and message in r.json()["error"], r.text
    assert set(r.json()) == {"error"} and "Traceback" not in r.text


@pytest.mark.parametrize("ctype", ["application/x-www-form-urlencoded", "text/plain", "application/json",
                                   "application/octet-stream", "video/mp4", None])
def test_a_raw_body_is_judged_by_its_bytes_not_its_declared_type(api, ctype):
    """`curl --data-binary @photo.jpg URL` declares application/x-www-form-urlencoded: the image is still read."""
    headers = {"Content-Type": ctype} if ctype else {}
    r = api.post("/v1/predict", content=PHOTO, headers=headers)
    assert r.status_code == 200 and len(r.json()["faces"]) == 1, r.text
    buf = io.BytesIO()
    Image.open(io.BytesIO(PHOTO)).save(buf, "PNG")
    assert api.post("/v1/stream/session-ctype", content=buf.getvalue(), headers=headers).status_code == 200


def test_bad_multipart_uploads(api):
    text = api.post("/v1/predict", files={"file": ("x.jpg", b"not an image at all", "image/jpeg")})
    assert text.status_code == 415 and text.json()["error"].startswith("x.jpg: not a readable image")
    missing = api.post("/v1/predict", files={"photo": ("a.jpg", PHOTO, "image/jpeg")})
    assert missing.status_code == 400 and "field 'file'" in missing.json()["error"]
    two = api.post("/v1/predict", files=[("file", ("a.jpg", PHOTO)), ("file", ("b.jpg", PHOTO))])
    assert two.status_code == 422 and "/v1/predict/batch" in two.json()["error"]
    field = api.post("/v1/predict", data={"file": "just text"})
    assert field.status_code == 415  # url-encoded form: not an image


def test_batch_answers_every_member_and_reports_the_broken_one():
    api = client()
    files = [("file", ("a.jpg", PHOTO, "image/jpeg")), ("file", ("broken.jpg", PHOTO[:3000], "image/jpeg")),
             ("file", ("group.jpg", encode(group_photo(2)), "image/jpeg")), ("file", ("notes.txt", b"text", "text/plain"))]
    r = api.post("/v1/predict/batch", files=files)
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["path"] for x in results] == ["a.jpg", "broken.jpg", "group.jpg", "notes.txt"]
    assert [len(x["faces"]) for x in results] == [1, 0, 2, 0]
    assert results[0]["error"] is None and results[2]["error"] is None
    assert "broken image" in results[1]["error"] and "not a readable image" in results[3]["error"]
    small = client(max_batch=2)
    for n in (3, 4):
        too_many = small.post("/v1/predict/batch", files=files[:n])
        assert too_many.status_code == 422 and "at most 2 per request" in too_many.json()["error"]
    raw = api.post("/v1/predict/batch", content=PHOTO, headers={"Content-Type": "image/jpeg"})
    assert raw.status_code == 415


def test_upload_limit_declared_and_streamed():
    api = client(max_upload_mb=0.5)
    big = b"\xff" * (600 * 1024)
    declared = api.post("/v1/predict", content=big, headers={"Content-Type": "image/jpeg"})
    assert declared.status_code == 413 and "0.5 MB upload limit" in declared.json()["error"]

    def chunks():  # no Content-Length: the body is counted as it streams in
        for _ in range(12):
            yield b"\xff" * (64 * 1024)

    streamed = api.post("/v1/predict", content=chunks(), headers={"Content-Type": "image/jpeg"})
    assert streamed.status_code == 413 and "upload limit" in streamed.json()["error"]
    multipart = api.post("/v1/predict/batch", files=[("file", ("a.jpg", big))])
    assert multipart.status_code == 413
    assert api.post("/v1/predict", content=PHOTO).status_code == 200  # under the limit still works


def test_declared_length_is_refused_before_the_body_reaches_the_app():
    sent = []

    def receiver(chunks):
        async def receive():
            chunks.pop()
            return {"type": "http.request", "body": b"x" * 600, "more_body": bool(chunks)}
        return receive

    async def send(message):
        sent.append(message)

    async def never(scope, receive, send):
        raise AssertionError("the app must not run")

    def scope(*headers):
        return {"type": "http", "method": "POST", "path": "/v1/predict",
                "headers": [(b"content-length", b"6000"), *headers]}

    chunks = list(range(10))  # the client sends 6000 bytes in 10 chunks, against a 1000-byte limit
    asyncio.run(_Guard(never, max_bytes=1000)(scope(), receiver(chunks), send))
    assert sent[0]["status"] == 413 and json.loads(sent[1]["body"])["error"].startswith("request body over the")
    assert len(chunks) == 10 - 7  # the body was thrown away, up to 4x the limit, so the client gets the answer
    chunks, sent[:] = list(range(10)), []
    asyncio.run(_Guard(never, max_bytes=1000)(scope((b"expect", b"100-continue")), receiver(chunks), send))
    assert sent[0]["status"] == 413 and len(chunks) == 10  # Expect: 100-continue: nothing was even sent


def test_pixel_limit():
    api = client(max_pixels=100_000)
    r = api.post("/v1/predict", content=PHOTO)  # 512x512 = 262,144 pixels
    assert r.status_code == 422 and "512x512 is over the 0.1 megapixel limit" in r.json()["error"]


def test_pixel_limit_is_the_servers_alone(monkeypatch):
    """--max-pixels over Pillow's own guard (Image.MAX_IMAGE_PIXELS, scaled down here: the photo is over twice it)
    is the limit that counts: 200 MP lets a 9,500x9,500 photo through."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)
    api = client(max_pixels=300_000)
    r = api.post("/v1/predict", content=PHOTO)  # 512x512 = 262,144 pixels
    assert r.status_code == 200 and len(r.json()["faces"]) == 1, r.text
    r = client(max_pixels=200_000).post("/v1/predict", content=PHOTO)
    assert r.status_code == 422 and "512x512 is over the 0.2 megapixel limit" in r.json()["error"]


def test_health_models_and_docs(api):
    from ferkit.weights import DEFAULT_MODEL

    assert api.get("/healthz").json() == {"status": "ok", "model": DEFAULT_MODEL}
    info = api.get("/v1/models").json()
    assert info["model"]["name"] == DEFAULT_MODEL and len(info["model"]["labels"]) == 7
    assert 0.6 < info["model"]["accuracy"]["PublicTest"] < 1 and info["model"]["arch"]
    assert [s["name"] for s in info["model"]["sources"]] == ["fer2013", "rafdb", "affectnet_subset"]

    def strings(x):
        if isinstance(x, dict):
            return [s for v in x.values() for s in strings(v)]
        return [s for v in x for s in strings(v)] if isinstance(x, list) else [x] if isinstance(x, str) else []

    # names and figures, never a path of the server's machine (issue 31: files, training data, the command)
    assert not [s for s in strings(info) if s.startswith("/") or "../" in s or ":\\" in s]
    assert "command" not in json.dumps(info)
    assert info["limits"]["max_upload_mb"] == 20.0
    docs = api.get("/docs")
    assert docs.status_code == 200 and "cdn." not in docs.text  # Swagger UI served from the package, offline
    js = [part for part in docs.text.split('"') if part.endswith("swagger-ui-bundle.js")][0]
    assert api.get(js).status_code == 200
    spec = api.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/predict/batch", "/healthz", "/v1/models"} <= set(spec["paths"])
    assert "multipart/form-data" in spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]


def test_page_and_static_files_only(api):
    page = api.get("/")
    assert page.status_code == 200 and "<canvas" in page.text and "script-src 'self'" in page.headers["content-security-policy"]
    assert api.get("/static/app.js").status_code == 200
    for path in ("/static/../serve.py", "/static/%2e%2e/serve.py", "/static/..%2fserve.py", "/etc/passwd"):
        r = api.get(path)
        assert r.status_code == 404 and "import" not in r.text, path
    assert api.get("/nope").json() == {"error": "Not Found"}


def test_internal_errors_and_timeouts_hide_details():
    api = client(timeout_s=0.3)
    service = api.app.state.service

    def boom(*args):
        raise RuntimeError("secret internal detail")

    service.predict = boom
    r = api.post("/v1/predict", content=PHOTO)
    assert r.status_code == 500 and r.json() == {"error": "internal server error"}

    service.predict = lambda *args: time.sleep(2)
    slow = api.post("/v1/predict", content=PHOTO)
    assert slow.status_code == 504 and slow.json() == {"error": "inference took over 0.3 s"}


def test_cors_is_off_by_default_and_can_be_allowed(api):
    origin = {"Origin": "http://elsewhere.example"}
    assert "access-control-allow-origin" not in api.get("/healthz", headers=origin).headers
    allowed = client(cors_origins=["http://elsewhere.example"])
    r = allowed.get("/healthz", headers=origin)
    assert r.headers["access-control-allow-origin"] == "http://elsewhere.example"


def test_concurrent_requests_get_their_own_answers(api):
    uploads = {"astronaut": PHOTO, "group2": encode(group_photo(2)), "group3": encode(group_photo(3))}
    expected = {k: api.post("/v1/predict", content=v).json() for k, v in uploads.items()}
    answers, errors = [], []

    def worker(i):
        key = list(uploads)[i % 3]
        try:
            for _ in range(4):
                answers.append((key, api.post("/v1/predict", content=uploads[key]).json()))
        except Exception as exc:  # noqa: BLE001 -- collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(9)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and len(answers) == 36
    assert all(answer == expected[key] for key, answer in answers)


def test_webcam_session_tracks_and_smooths(api):
    frame = encode(group_photo(2))
    first = [api.post("/v1/stream/session-one", content=frame).json() for _ in range(4)]
    assert [f["frame"] for f in first] == [0, 1, 2, 3]
    assert all(sorted(x["track_id"] for x in f["faces"]) == [0, 1] for f in first)
    last = first[-1]["faces"][0]
    raw = [next(x for x in f["faces"] if x["track_id"] == last["track_id"])["probabilities"] for f in first]
    for k, v in last["smoothed"].items():  # the running mean of the track's frames
        assert v == pytest.approx(np.mean([r[k] for r in raw]), abs=2e-4)
    other = api.post("/v1/stream/session-two", content=encode(group_photo(1))).json()
    assert other["frame"] == 0 and [x["track_id"] for x in other["faces"]] == [0]  # sessions are independent
    assert api.delete("/v1/stream/session-one").json() == {"session": "session-one", "ended": True}
    assert api.post("/v1/stream/session-one", content=frame).json()["frame"] == 0  # a new session
    assert api.post("/v1/stream/x", content=frame).status_code == 422
    assert api.post("/v1/stream/session-one", content=b"junk").status_code == 415


def test_min_confidence_abstains_on_photos_and_webcam_frames():
    api = client(min_confidence=1.0)  # no probability reaches 1: every face abstains
    face = api.post("/v1/predict", files={"file": ("p.jpg", encode(group_photo(1)), "image/jpeg")}).json()["faces"][0]
    assert face["emotion"] == "uncertain" and face["uncertain"] and abs(sum(face["probabilities"].values()) - 1) < 1e-3
    frame = api.post("/v1/stream/session-abstain", content=encode(group_photo(1))).json()
    assert [f["emotion"] for f in frame["faces"]] == ["uncertain"]


def test_sessions_are_bounded():
    api = client()
    service = api.app.state.service
    service.config.max_sessions = 3
    for i in range(5):
        assert api.post(f"/v1/stream/session-{i:03d}", content=PHOTO).status_code == 200
    assert list(service.sessions) == ["session-002", "session-003", "session-004"]


def test_serve_cli_help_and_bad_model():
    runner = CliRunner()
    help_text = runner.invoke(cli, ["serve", "--help"]).output
    assert "--port" in help_text and "--workers" in help_text and "--cors-origin" in help_text
    bad = runner.invoke(cli, ["serve", "--model", "no-such-model", "--port", "1"])
    assert bad.exit_code == 1 and "no-such-model" in bad.output


def test_every_stream_route_keeps_the_session_id_rule(api):
    for method in (api.post, api.delete):
        r = method("/v1/stream/abc")
        assert r.status_code == 422 and "session id" in r.json()["error"]
    assert api.delete("/v1/stream/abcdefgh").status_code == 200


def test_serve_on_a_busy_port_fails_before_announcing(tmp_path):
    import socket

    from typer.testing import CliRunner

    from ferkit.cli import app

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--port", str(port)])
    assert result.exit_code == 1 and "cannot listen there" in result.output
    assert "ferkit serve: http" not in result.output
