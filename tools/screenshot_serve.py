"""Screenshots of the `ferkit serve` page for the README: a classified photo, and webcam mode on a fake camera.

    python tools/screenshot_serve.py [--out docs/figures]

Starts `ferkit serve` on a free loopback port, drives Debian's chromium with Playwright, and writes
serve-photo.png (the bundled public-domain sample photo) and serve-webcam.png (Chromium's fake camera
playing a clip of two public-domain portraits: the sample photo and matplotlib's Grace Hopper).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_serve_live import CHROMIUM_ARGS, free_port, write_y4m  # noqa: E402  (the tests' fake-camera clip)

from ferkit.pipeline.face_images import SAMPLE_PHOTO  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("needs Debian's chromium: apt-get install chromium")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "ferkit.cli", "serve", "--port", str(port), "--log-level", "warning"])
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
            clip = Path(tmp) / "camera.y4m"
            write_y4m(clip)
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS + [
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={clip}"])
            page = browser.new_page(viewport={"width": 1180, "height": 860})
            page.goto(url + "/")
            page.set_input_files("#file", str(SAMPLE_PHOTO))
            page.wait_for_selector("body[data-state=done]")
            args.out.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out / "serve-photo.png"), full_page=True)
            page.click("#tab-webcam")
            page.click("#cam-start")
            while page.evaluate("Number(document.body.dataset.frames || 0)") < 12:
                page.wait_for_timeout(100)
            page.screenshot(path=str(args.out / "serve-webcam.png"), full_page=True)
            browser.close()
        print(f"wrote {args.out / 'serve-photo.png'} and {args.out / 'serve-webcam.png'}")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
