"""`ferkit serve` as a real server on loopback: the API over uvicorn, and the web page in headless Chromium.

The browser tests drive Debian's chromium (never a downloaded browser) with Playwright. They are skipped
where no chromium is installed, unless FERKIT_REQUIRE_BROWSER=1 (set by .ci/run, which installs it).
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import cv2
import numpy as np
import pytest

from conftest import group_photo
from ferkit.pipeline.face_images import SAMPLE_PHOTO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
HAPPY = (240, 200, 40)  # the page's colour for happy (RGB)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """`ferkit serve` in a subprocess on a free loopback port; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ferkit.cli", "serve", "--port", str(port), "--max-upload-mb", "2", "--timeout", "3",
                             "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
                if json.load(r)["status"] == "ok":
                    break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("ferkit serve exited: " + proc.stdout.read())
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("ferkit serve did not answer /healthz within 30 s")
    yield url
    proc.terminate()
    proc.wait(10)


def post(url: str, body: bytes, ctype: str = "image/jpeg") -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def test_live_api(server):
    status, record = post(server + "/v1/predict", SAMPLE_PHOTO.read_bytes())
    assert status == 200 and record["faces"][0]["emotion"] == "happy"
    status, error = post(server + "/v1/predict", b"\0" * (3 * 1024 * 1024))
    assert status == 413 and error == {"error": "request body over the 2 MB upload limit"}
    # chunked upload (no Content-Length) over the limit: cut off while streaming
    host, port = server.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", "/v1/predict")
    conn.putheader("Content-Type", "image/jpeg")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    try:
        for _ in range(48):
            chunk = b"\xff" * 65536
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server may close the connection as soon as it has answered
    response = conn.getresponse()
    assert response.status == 413 and "upload limit" in json.loads(response.read())["error"]
    conn.close()
    # a client that stops sending half way (slowloris) is answered 408 after --timeout, not held forever
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", "/v1/predict")
    conn.putheader("Content-Type", "image/jpeg")
    conn.putheader("Content-Length", "100000")
    conn.endheaders()
    conn.send(b"\xff" * 1000)
    start = time.monotonic()
    response = conn.getresponse()
    assert response.status == 408 and json.loads(response.read()) == {"error": "upload not received within 3 s"}
    assert 2.5 < time.monotonic() - start < 10
    conn.close()


def write_y4m(path, frames: int = 40) -> None:
    """A fake-camera clip (YUV4MPEG2, 4:2:0) of two people swaying; it loops without a jump."""
    base = cv2.resize(group_photo(2), (640, 360))
    with open(path, "wb") as f:
        f.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for i in range(frames):
            frame = np.full((480, 640, 3), 190, np.uint8)
            dx = int(12 * np.sin(2 * np.pi * i / frames))
            frame[60:420, 12 + dx:628 + dx] = base[:, 12:628]
            f.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not CHROMIUM:
        if os.environ.get("FERKIT_REQUIRE_BROWSER") == "1":
            pytest.fail("FERKIT_REQUIRE_BROWSER=1 but no chromium is installed (apt-get install chromium)")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    clip = tmp_path_factory.mktemp("camera") / "camera.y4m"
    write_y4m(clip)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + [
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["camera"], origin=server)
    page = context.new_page()
    page.set_default_timeout(30_000)
    console_errors = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.goto(server + "/")
    yield page
    context.close()
    assert not [e for e in console_errors if "status of 4" not in e], console_errors  # no script errors, no CSP blocks


def wait_until(page, expression: str, timeout_s: float = 30) -> None:
    """Poll a JS expression from Python (page.wait_for_function evaluates strings in the page, which the
    page's Content-Security-Policy rightly forbids)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {expression}")
        page.wait_for_timeout(100)


def canvas_pixel(page, x: int, y: int) -> tuple[int, int, int]:
    return tuple(page.evaluate(f"Array.from(document.getElementById('canvas').getContext('2d')"
                               f".getImageData({x}, {y}, 1, 1).data.slice(0, 3))"))


@pytest.mark.browser
def test_page_classifies_an_uploaded_photo(page, server):
    from ferkit.weights import DEFAULT_MODEL

    wait_until(page, f"document.getElementById('model-info').textContent.includes('{DEFAULT_MODEL}')")
    page.set_input_files("#file", str(SAMPLE_PHOTO))
    page.wait_for_selector("body[data-state=done]")
    _, expected = post(server + "/v1/predict", SAMPLE_PHOTO.read_bytes())
    box = expected["faces"][0]["box"]
    assert page.locator("#faces li").count() == 1
    assert page.get_attribute("#faces li", "data-emotion") == "happy"
    shown = f"happy ({expected['faces'][0]['probabilities']['happy'] * 100:.1f}"
    assert shown in page.inner_text("#faces li"), page.inner_text("#faces li")  # the probability as the API gives it
    assert page.evaluate("[canvas.width, canvas.height]") == [512, 512]
    # the box is drawn in happy's colour on its left edge, the photo itself is left elsewhere
    edge = canvas_pixel(page, box[0], box[1] + box[3] // 2)
    assert np.abs(np.subtract(edge, HAPPY)).max() < 40, edge
    photo = cv2.cvtColor(cv2.imread(str(SAMPLE_PHOTO)), cv2.COLOR_BGR2RGB)[450, 60]
    assert np.abs(np.subtract(canvas_pixel(page, 60, 450), photo)).max() < 12
    assert page.locator("#error").is_hidden()


@pytest.mark.browser
def test_page_group_photo_tiff_and_errors(page, tmp_path):
    cv2.imwrite(str(tmp_path / "group.jpg"), group_photo(3))
    page.set_input_files("#file", str(tmp_path / "group.jpg"))
    page.wait_for_selector("body[data-state=done]")
    assert page.locator("#faces li").count() == 3

    from PIL import Image  # TIFF: browsers cannot show it, so the page shows the server's annotated PNG

    Image.open(SAMPLE_PHOTO).save(tmp_path / "photo.tiff")
    page.evaluate("document.body.dataset.state = 'idle'")
    page.set_input_files("#file", str(tmp_path / "photo.tiff"))
    page.wait_for_selector("body[data-state=done]")
    assert page.locator("#faces li").count() == 1 and page.locator("#annotated").is_visible()
    assert page.evaluate("document.getElementById('annotated').naturalWidth") == 512

    (tmp_path / "notes.jpg").write_text("this is not a photo")
    page.set_input_files("#file", str(tmp_path / "notes.jpg"))
    page.wait_for_selector("body[data-state=error]")
    assert "notes.jpg: not a readable image" in page.inner_text("#error")


@pytest.mark.browser
def test_webcam_mode_tracks_faces_live(page):
    page.click("#tab-webcam")
    page.fill("#cam-fps", "8")
    page.click("#cam-start")
    wait_until(page, "Number(document.body.dataset.frames || 0) >= 8", timeout_s=60)
    last = page.evaluate("window.ferkit.last")
    assert len(last["faces"]) == 2 and last["frame"] >= 7
    assert sorted(f["track_id"] for f in last["faces"]) == [0, 1]  # the same two tracks since the first frame
    for f in last["faces"]:
        assert abs(sum(f["smoothed"].values()) - 1) < 1e-3 and f["emotion"] == max(f["smoothed"], key=f["smoothed"].get)
    assert page.locator("#faces li").count() == 2 and "track 0" in page.inner_text("#faces")
    assert page.evaluate("[canvas.width, canvas.height]") == [640, 480]
    shot = cv2.imdecode(np.frombuffer(page.locator("#canvas").screenshot(), np.uint8), cv2.IMREAD_COLOR)
    assert shot.std() > 20  # video frames with boxes drawn, not a blank canvas
    page.click("#cam-stop")
    assert page.get_attribute("body", "data-state") == "idle"
