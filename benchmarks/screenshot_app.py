"""Screenshot of the web app (``zoo-cli serve``) showing a result on a real photo, in headless Chromium.

    python -m benchmarks.screenshot_app [--model NAME] [--photo PATH] [--out docs/app_screenshot.png]

Starts the page on 127.0.0.1 (a free port), opens it in Debian's ``chromium`` (``apt-get install chromium``;
nothing downloads a browser), uploads the photo through the page's file input exactly as a user's file
dialog would, waits for the result and writes a full-page PNG (palette-quantised when it would exceed
``--max-kb``). The photo defaults to ``shared/data/scenes/group_sample1.jpg`` in the first ancestor of this
repository that has one; without it (and without ``--photo``) the script says so and exits 0. The photo is
only read, never copied into the repository.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON messages ending
in NUL on file descriptors 3 and 4), so no websocket library or browser driver is needed. Chromium runs with
``--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update
--no-first-run --disable-sync`` and a host-resolver rule that leaves only 127.0.0.1 resolvable (with the
other flags alone it still looked up Google hosts: seen with ``strace -f -e trace=connect,sendmmsg``);
Gradio's analytics are off and the page uses the fonts Gradio ships, so nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHOTO = Path("shared") / "data" / "scenes" / "group_sample1.jpg"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
    # Chromium still looks up Google hosts (accounts, clients2, update, content-autofill) despite the flags
    # above: resolve every name but 127.0.0.1 to "not found", so no DNS query or connection leaves the machine
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--disable-features=DnsOverHttps,AutofillServerCommunication,OptimizationHints,Translate,MediaRouter,"
    "CertificateTransparencyComponentUpdater",
    "--disable-domain-reliability", "--disable-client-side-phishing-detection", "--disable-breakpad",
    "--no-pings", "--metrics-recording-only", "--hide-scrollbars", "--mute-audio", "--disable-extensions",
    "--disable-default-apps", "--no-default-browser-check", "--disable-dev-shm-usage", "--remote-debugging-pipe",
]


def find_photo() -> Path | None:
    for parent in REPO.parents:
        if (parent / PHOTO).is_file():
            return parent / PHOTO
    return None


def _fd_above_9(fd: int) -> int:
    """``fd`` moved above 9, so that putting the pipe on Chromium's descriptors 3 and 4 never clobbers it."""
    import fcntl

    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class DevTools:
    """Chrome DevTools protocol over ``--remote-debugging-pipe`` (fd 3: commands in, fd 4: replies out)."""

    def __init__(self, chromium: str, user_data_dir: Path, width: int, height: int) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        to_chrome_r, from_chrome_w = _fd_above_9(to_chrome_r), _fd_above_9(from_chrome_w)
        flags = [*CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", f"--window-size={width},{height}"]
        # bash (dash takes one-digit descriptors only) puts the pipe ends on Chromium's descriptors 3 and 4
        command = (f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w} {to_chrome_r}<&- {from_chrome_w}>&-')
        self.process = subprocess.Popen(["bash", "-c", command, chromium, *flags, "about:blank"],
                                        pass_fds=(to_chrome_r, from_chrome_w), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed the DevTools pipe (exit code {self.process.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, timeout: float = 60, browser: bool = False) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session and not browser:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")

    def close(self) -> None:
        try:
            self.call("Browser.close", browser=True, timeout=10)
        except Exception:  # noqa: BLE001 - the browser may already be gone
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def screenshot(url: str, photo: Path, chromium: str, width: int, timeout: float) -> bytes:
    """Open ``url``, upload ``photo`` through the page's file input, wait for the result, return a PNG."""
    with tempfile.TemporaryDirectory(prefix="zoo-chromium-") as profile:
        tools = DevTools(chromium, Path(profile), width, 1000)
        try:
            targets = tools.call("Target.getTargets", browser=True)["targetInfos"]
            page = next(t for t in targets if t["type"] == "page")
            tools.session = tools.call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True},
                                       browser=True)["sessionId"]
            tools.call("Emulation.setDeviceMetricsOverride",
                       {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
            tools.call("Page.enable")
            tools.call("Page.navigate", {"url": url})
            tools.wait_for("!!document.querySelector('#photo input[type=file]')", timeout, "the page to load")
            document = tools.call("DOM.getDocument", {"depth": -1})
            node = tools.call("DOM.querySelector", {"nodeId": document["root"]["nodeId"],
                                                    "selector": "#photo input[type=file]"})["nodeId"]
            tools.call("DOM.setFileInputFiles", {"files": [str(photo)], "nodeId": node})
            # the upload event runs the analysis; the status line ends with the time taken
            tools.wait_for("(document.querySelector('#status')?.innerText || '').includes('detector')", timeout,
                           "the analysis result")
            tools.wait_for("[...document.querySelectorAll('#faces img, #bars img')].filter("
                           "i => i.complete && i.naturalWidth > 0).length >= 2", timeout, "the result images")
            time.sleep(1.0)
            height = int(tools.evaluate("Math.ceil(document.documentElement.scrollHeight)"))
            tools.call("Emulation.setDeviceMetricsOverride",
                       {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
            time.sleep(1.0)
            shot = tools.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
            return base64.b64decode(shot["data"])
        finally:
            tools.close()


def shrink_png(png: bytes, max_kb: int) -> bytes:
    """Fit a PNG in ``max_kb``: drop low bits of each channel (6, 5, then 4 bits kept: smooth photos, no
    palette banding), then fall back to 256 dithered colours, scaled down by 10% steps."""
    from PIL import Image, ImageOps

    if len(png) <= max_kb * 1024:
        return png
    image = Image.open(io.BytesIO(png)).convert("RGB")

    def encode(picture: Image.Image) -> bytes:
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG", optimize=True)
        return buffer.getvalue()

    for bits in (6, 5, 4):
        data = encode(ImageOps.posterize(image, bits))
        if len(data) <= max_kb * 1024:
            return data
    while True:
        palette = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        data = encode(image.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG))
        if len(data) <= max_kb * 1024 or image.width < 600:
            return data
        image = image.resize((int(image.width * 0.9), int(image.height * 0.9)), Image.Resampling.LANCZOS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model to preselect (default: the app's default)")
    parser.add_argument("--models-dir", action="append", default=[], help="offer the model dirs under this folder")
    parser.add_argument("--photo", type=Path, default=None, help="photo to upload (default: group_sample1.jpg)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "app_screenshot.png")
    parser.add_argument("--width", type=int, default=1024, help="browser width in CSS pixels")
    parser.add_argument("--max-kb", type=int, default=300, help="largest PNG size; larger ones are quantised")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for the page and the result")
    args = parser.parse_args(argv)

    photo = args.photo or find_photo()
    if photo is None or not photo.is_file():
        print(f"no photo: {args.photo or PHOTO} not found; pass --photo PATH", file=sys.stderr)
        return 0
    if not args.chromium:
        print("no chromium on PATH: apt-get install chromium (or pass --chromium PATH)", file=sys.stderr)
        return 1
    import torch

    from zoo.apps.webapp import OFFLINE_ENV, serve

    torch.manual_seed(0)  # an untrained model's random weights, and so its page, are the same every run

    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="zoo-app-examples-") as examples:
        demo = serve(args.model, host="127.0.0.1", port=port, models_dirs=args.models_dir, block=False,
                     examples_dir=examples)
        print(f"page up at http://127.0.0.1:{port}/ after {time.monotonic() - start:.0f} s", file=sys.stderr)
        try:
            png = screenshot(f"http://127.0.0.1:{port}/", photo.resolve(), args.chromium, args.width, args.timeout)
        finally:
            demo.close()
    png = shrink_png(png, args.max_kb)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(png)
    print(f"wrote {args.out} ({len(png) / 1024:.0f} KB, {time.monotonic() - start:.0f} s) from {photo.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
