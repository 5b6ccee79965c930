"""The explorer in a real browser: JupyterLab serves a one-cell notebook, headless Chromium (Debian's,
driven by Playwright) runs it, moves the class menu and the layer slider, and the picture changes. And the
teaching lab as `make lab` starts it (lab/ first on the config path) has none of nbgrader's tooling.

A screenshot of the explorer is kept as artifacts/explorer.png. Skips, saying why, where Chromium is
not at /usr/bin/chromium (`bash tests/setup_browser.sh` installs it) or playwright is not installed.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
ARTIFACT = ROOT / "artifacts" / "explorer.png"
LAB_CONFIG = ROOT / "lab"   # what `make lab` puts first on JUPYTER_CONFIG_PATH (the Makefile's LAB_CONFIG)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BUDGET_S = 110  # the whole test, server start included, stays under two minutes

NOTEBOOK_CODE = """\
from minicam.data import CLASSES, make_shapes
from minicam.models import load_pretrained
from minicam.suite.widgets import explorer
explorer(load_pretrained("shapes_vgg"), make_shapes(4, seed=1000).images, class_names=CLASSES)"""

# JavaScript: a digest of the bytes the explorer's <img> shows (its src is a blob: URL), given its selector.
PICTURE_DIGEST = """async (selector) => {
  const img = document.querySelector(selector);
  const bytes = await (await fetch(img.src)).arrayBuffer();
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return [img.src, Array.from(new Uint8Array(digest)).map(b => b.toString(16).padStart(2, '0')).join('')];
}"""
LAB_PICTURE = ".jp-OutputArea img.widget-image"


def budgeted(page, deadline, what):
    """budget(): give the page's next waits what is left of the test's time, so the whole test stays bounded."""
    def budget():
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"{what} ran out of its time budget")
        page.set_default_timeout(left * 1000)
    return budget


def picture(page, selector):
    """(src, SHA-256 of the bytes) of the explorer picture at `selector`."""
    return page.evaluate(PICTURE_DIGEST, selector)


def redrawn(page, selector, old_src, budget):
    """Wait until the picture at `selector` is another one than `old_src`; its (src, digest)."""
    budget()
    page.wait_for_function("([sel, old]) => document.querySelector(sel).src !== old", arg=[selector, old_src])
    return picture(page, selector)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def needs_a_browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}; `bash tests/setup_browser.sh` installs Debian's chromium")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")


def one_cell_notebook(path, code):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on 127.0.0.1 at a free port, serving tmp_path with the notebook; killed afterwards.
    Yields (notebook URL, tmp_path, the monotonic time by which the test must be done)."""
    deadline = time.monotonic() + BUDGET_S
    needs_a_browser()
    (tmp_path / "root").mkdir()
    one_cell_notebook(tmp_path / "root" / "explorer.ipynb", NOTEBOOK_CODE)
    with jupyterlab(tmp_path) as (url, token):
        yield f"{url}/lab/tree/explorer.ipynb?token={token}", tmp_path, deadline


@contextmanager
def jupyterlab(tmp_path, **env_extra):
    """JupyterLab serving tmp_path/root, with a fresh Jupyter home in tmp_path/home, its log in
    tmp_path/lab.log, and `env_extra` in its environment; yields (its URL, its token), then ends it."""
    root, home = tmp_path / "root", tmp_path / "home"
    # A fresh Jupyter home: no user settings, and no news or update checks (there is no network).
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "IPYTHONDIR": str(home / "ipython"), "MPLCONFIGDIR": str(home / "mpl"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **env_extra}
    port, token = free_port(), os.urandom(16).hex()
    log = open(tmp_path / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly"]
        + (["--allow-root"] if os.geteuid() == 0 else []),
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        started = time.monotonic() + 45
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > started:
                    state = "exited" if server.poll() is not None else "did not answer within 45 s"
                    pytest.fail(f"JupyterLab {state}; its log ends: {(tmp_path / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.3)
        yield url, token
    finally:
        # The server and its kernel are in a session of their own: end that whole group, only it.
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(server.pid, sig)
                server.wait(timeout=wait)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


def test_explorer_redraws_in_a_browser(lab):
    from playwright.sync_api import sync_playwright

    url, tmp_path, deadline = lab

    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            budget = budgeted(page, deadline, f"the browser test ({BUDGET_S} s)")
            budget()
            page.goto(url)
            # Run the cell once the notebook's kernel is idle.
            budget()
            page.wait_for_function("""() => {
                const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
                return kernel && kernel.status === 'idle';
            }""")
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            budget()  # the explorer's picture, or the cell's error (then fail at once, with its text)
            error = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
            page.wait_for_selector(f".jp-OutputArea img.widget-image[src], {error}")
            if page.locator(error).count():
                pytest.fail(f"the notebook cell failed: {page.locator(error).first.inner_text()[-2000:]}")
            explorer = page.locator(".jp-OutputArea .widget-vbox").first
            first_src, first = picture(page, LAB_PICTURE)

            # The class menu: another class by the <select>.
            menu = explorer.locator(".widget-dropdown", has=page.locator("label", has_text="class")).locator("select")
            old_class = menu.input_value()
            menu.select_option(index=(int(menu.evaluate("s => s.selectedIndex")) + 1) % 4)
            assert menu.input_value() != old_class
            class_src, after_class = redrawn(page, LAB_PICTURE, first_src, budget)
            assert after_class != first, "the picture did not change with the class"

            # The layer slider: the keyboard on its handle, one layer shallower.
            slider = explorer.locator(".widget-hslider", has=page.locator("label", has_text="layer"))
            readout = slider.locator(".widget-readout")
            assert readout.inner_text().strip() == "relu6"
            budget()
            slider.locator(".noUi-handle").focus()
            page.keyboard.press("ArrowLeft")
            page.wait_for_function("el => el.innerText.trim() === 'relu5'", arg=readout.element_handle())
            _, after_layer = redrawn(page, LAB_PICTURE, class_src, budget)
            assert after_layer not in (first, after_class), "the picture did not change with the layer"
            assert "layer relu5" in explorer.locator(".widget-html").first.inner_text()
            assert "explorer error" not in explorer.inner_text()

            ARTIFACT.parent.mkdir(exist_ok=True)
            explorer.screenshot(path=str(ARTIFACT))
            print(f"screenshot of the explorer in Chromium: {ARTIFACT}")
        except (Exception, pytest.fail.Exception):
            # Keep what the browser showed, for the failure report.
            ARTIFACT.parent.mkdir(exist_ok=True)
            failure = ARTIFACT.with_name("explorer-failure.png")
            page.screenshot(path=str(failure), timeout=10_000)
            print(f"the page at the failure: {failure}\nits notebook output: "
                  f"{page.locator('.jp-OutputArea').all_inner_texts()}")
            raise
        finally:
            browser.close()


# JavaScript: the nbgrader plugins JupyterLab registered, whether the widgets' plugin (a federated extension
# installed beside nbgrader's) is one, and the nbgrader words the lab's shell shows.
COURSE_TOOLING = r"""() => {
  const plugins = window.jupyterapp.listPlugins();
  const shell = document.getElementById('main');
  const words = /nbgrader|validate|create assignment|assignment list|course list|formgrader/gi;
  const shown = [shell.innerText, ...Array.from(shell.querySelectorAll('[title], [aria-label], [data-id]'),
    el => [el.title, el.getAttribute('aria-label'), el.dataset.id].join(' '))].join(' ');
  return {nbgrader: plugins.filter(id => id.startsWith('@jupyter/nbgrader')),
          widgets: plugins.includes('@jupyter-widgets/jupyterlab-manager:plugin'),
          words: [...new Set((shown.match(words) || []).map(w => w.toLowerCase()))]};
}"""


def test_the_teaching_lab_has_no_course_tooling(tmp_path):
    """`make lab`'s launch (lab/ first on JUPYTER_CONFIG_PATH): no nbgrader server extension (no warning
    about its config in the log, no assignment page), no nbgrader plugin, menu, sidebar or Validate button
    in the lab; the other extensions (the widgets) still load, and a notebook opens and runs."""
    from playwright.sync_api import sync_playwright

    needs_a_browser()
    (tmp_path / "root").mkdir()
    one_cell_notebook(tmp_path / "root" / "exercise.ipynb", 'print("the kernel runs")')
    with jupyterlab(tmp_path, JUPYTER_CONFIG_PATH=str(LAB_CONFIG)) as (url, token):
        try:
            urllib.request.urlopen(f"{url}/assignments?token={token}", timeout=5)
            status = 200
        except urllib.error.HTTPError as err:
            status = err.code
        assert status == 404, f"nbgrader's assignment list answers ({status}): its server extension is on"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(60_000)
                page.goto(f"{url}/lab/tree/exercise.ipynb?token={token}")
                page.wait_for_function("""() => {
                    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                    const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
                    return kernel && kernel.status === 'idle' && w.toolbar && w.toolbar.node.childElementCount > 3;
                }""")
                page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
                page.wait_for_selector(".jp-OutputArea-output:has-text('the kernel runs')")
                found = page.evaluate(COURSE_TOOLING)
            finally:
                browser.close()
    log = (tmp_path / "lab.log").read_text()
    assert found["widgets"], "the widgets' extension did not load: lab/ turned off more than nbgrader"
    assert found["nbgrader"] == [], f"nbgrader's JupyterLab plugins are on: {found['nbgrader']}"
    assert found["words"] == [], f"the lab shows nbgrader's tooling: {found['words']}"
    assert "nbgrader" not in log.lower(), "nbgrader is in the server's log:\n" + "\n".join(
        line for line in log.splitlines() if "nbgrader" in line.lower())
