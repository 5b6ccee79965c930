"""`make explorer` as a lecturer starts it: Voila serves the lecture-hall explorer on 127.0.0.1, moves to the next
port when its own is taken, prints the URL; headless Chromium sees no code, large controls, moves the layer and the
class controls and sees the picture change, switches the model; then the server is stopped by its process id with
Ctrl-C's signal and nothing of it is left. A screenshot is kept as artifacts/explorer-app.png.
"""
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from test_browser import CHROMIUM, CHROMIUM_ARGS, budgeted, free_port, needs_a_browser, picture, redrawn

ROOT = Path(__file__).resolve().parent.parent
ARTIFACT = ROOT / "artifacts" / "explorer-app.png"
BUDGET_S = 90
IMG = "img.widget-image"    # the explorer's picture (Voila shows no other image)

def _port_is_free(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def app(tmp_path):
    """`make explorer` with its port taken; yields (URL, the server process), then stops it by its process id."""
    needs_a_browser()
    deadline = time.monotonic() + BUDGET_S
    taken = socket.socket()
    taken.bind(("127.0.0.1", free_port()))
    taken.listen()
    port = taken.getsockname()[1]
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "MPLCONFIGDIR": str(tmp_path / "mpl")}
    server = subprocess.Popen(["make", "--no-print-directory", "explorer", f"EXPLORER_PORT={port}"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    log = []
    try:
        for line in server.stdout:
            log.append(line)
            if re.match(r"http://127\.0\.0\.1:\d+/", line.strip()):
                break
            if time.monotonic() > deadline - 60:
                break
        url = log[-1].strip() if log else ""
        assert re.match(r"http://127\.0\.0\.1:\d+/$", url), f"make explorer printed no URL: {''.join(log)[-2000:]}"
        assert not url.endswith(f":{port}/"), f"port {port} was taken, yet the app says {url}"
        assert "already in use" in "".join(log)
        yield url, server, deadline
    finally:
        taken.close()
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_the_lecture_hall_explorer_serves_stops_and_redraws(app, tmp_path):
    from playwright.sync_api import sync_playwright

    url, server, deadline = app
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 720})
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            budget = budgeted(page, deadline, f"the explorer app test ({BUDGET_S} s)")
            budget()
            page.goto(url)
            budget()
            page.wait_for_selector("img.widget-image[src]")
            assert "lecture_hall" not in page.content(), "the notebook's code is on the page"
            size = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector("
                                 "'.minicam-hall .widget-label')).fontSize)")
            assert size >= 22, f"the controls' labels are {size} px, not large"
            first_src, first = picture(page, IMG)

            menu = page.locator(".widget-dropdown", has=page.locator("label", has_text="class")).locator("select")
            menu.select_option(index=(int(menu.evaluate("s => s.selectedIndex")) + 1) % 4)
            class_src, after_class = redrawn(page, IMG, first_src, budget)
            assert after_class != first, "the picture did not change with the class"

            slider = page.locator(".widget-hslider", has=page.locator("label", has_text="layer"))
            readout = slider.locator(".widget-readout")
            before = readout.inner_text().strip()
            budget()
            slider.locator(".noUi-handle").focus()
            page.keyboard.press("ArrowLeft")
            page.wait_for_function("([el, old]) => el.innerText.trim() !== old", arg=[readout.element_handle(), before])
            layer_src, after_layer = redrawn(page, IMG, class_src, budget)
            assert after_layer not in (first, after_class), "the picture did not change with the layer"

            page.get_by_role("button", name="shapes_resnet").click()
            budget()
            # the ResNet's explorer replaces the VGG's: its layers are the ResNet's, not relu1..relu6
            page.wait_for_function("() => { const r = [...document.querySelectorAll('.widget-hslider')].find("
                                   "s => s.innerText.includes('layer')); return r && !/relu\\d/.test("
                                   "r.querySelector('.widget-readout').innerText); }")
            assert page.locator("img.widget-image").count() == 1
            ARTIFACT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACT))
        finally:
            browser.close()

    # Ctrl-C's signal to the server's process id: it stops with its kernel, and its port is free again.
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    os.killpg(server.pid, signal.SIGINT)
    server.wait(timeout=20)
    rest = server.stdout.read()
    assert "Stopping" in rest or "Kernel shutdown" in rest, rest[-1000:]
    assert _port_is_free(port)
    left = subprocess.run(["pgrep", "-s", str(server.pid)], capture_output=True, text=True).stdout.split()
    assert not left, f"processes of the app are left: {left}"
