"""The class hub through a browser: the round of a term on `make hub`, in under a minute.

A class of one student and a lecturer (real Linux accounts, made by `python -m hub.roster add` and removed
afterwards), the test's own two-exercise assignment (tests/hub_fixtures/90_hub_check.ipynb, 3 points: no
minicam import, so that it grades in seconds) released by `python -m hub.course release`, and the hub started
as `make hub` starts it (`python -m hub.serve`) on a port another process holds, so it moves to the next one.
In headless Chromium the student logs in (PAM, with the password the roster command set), opens the
assignment list, fetches the assignment, writes the first answer into the notebook, saves and submits; the
lecturer collects and grades (the project's sandboxed grader) and returns the feedback from the command line;
the lecturer's formgrader lists the submission as graded, 1 / 3 (the course gradebook); the student fetches the
feedback and its page shows 1 of 3 points and no line of the hidden tests. Then the hub
is stopped by its process id (SIGTERM) and no process of it is left: no proxy, no server, no kernel.

Skips, saying why, unless run as root with useradd, Chromium, playwright and hub/node_modules (make hub).
"""
import csv
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "hub_fixtures" / "90_hub_check.ipynb"
ASSIGNMENT = FIXTURE.stem
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PROXY = ROOT / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
BUDGET_S = 60
# The test's additions to hub/jupyterhub_config.py: a lab without news and update checks (there is no network).
EXTRA_CONFIG = """\
c = get_config()  # noqa: F821
c.Spawner.args = ["--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args, **kwargs):
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, **kwargs)
    assert done.returncode == 0, f"{' '.join(args[:3])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def processes_of(run_id=None, users=()):
    """pids of the processes carrying the hub's run id, or owned by one of `users`, that are still running (not
    zombies: a process that has ended waits there until its new parent, the machine's init, reaps it)."""
    uids = {pwd.getpwnam(u).pw_uid for u in users}
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if open(f"/proc/{entry.name}/stat").read().rsplit(")", 1)[1].split()[0] in "ZX":
                continue
            if entry.stat().st_uid in uids:
                found.append(int(entry.name))
            elif run_id and f"MINICAM_HUB_ID={run_id}".encode() in open(f"/proc/{entry.name}/environ", "rb").read():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def hub_run_id(pid):
    """The run id hub.serve gave JupyterHub, its child."""
    [child] = open(f"/proc/{pid}/task/{pid}/children").read().split()
    environ = open(f"/proc/{child}/environ", "rb").read().split(b"\0")
    return next(v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"MINICAM_HUB_ID="))


@pytest.fixture
def a_class():
    """A class folder with one student and a lecturer (accounts made now), the assignment released (due in a
    day); yields (class folder, student, password, lecturer); removes the accounts and the folder afterwards."""
    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("the hub test makes Linux accounts: run it as root on a machine with useradd")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}; `bash tests/setup_browser.sh` installs Debian's chromium")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not PROXY.exists():
        pytest.skip(f"no {PROXY}: `make hub` installs configurable-http-proxy (cd hub && npm ci)")
    from course.sandbox import bwrap_problem, free_uids
    problem = bwrap_problem(free_uids(62600, 1)[0])
    if problem:
        pytest.skip(f"the round grades in the sandbox, and there is none here: {problem}")
    # A class's users run this checkout's environment: where the checkout lies in a folder they cannot enter (CI's
    # clone in a `mktemp -d` folder), give the folders above it o+x (enter, not list) for the test, then take it back.
    opened = [p for p in ROOT.parents if not os.stat(p).st_mode & stat.S_IXOTH]
    for p in opened:
        os.chmod(p, os.stat(p).st_mode | stat.S_IXOTH)
    # Not pytest's tmp_path: that is 0700 (root's), and the users' servers must reach the exchange below it.
    tmp = Path(tempfile.mkdtemp(prefix="minicam-hub-test-", dir="/tmp"))
    os.chmod(tmp, 0o755)
    tag = secrets.token_hex(3)
    student, lecturer = f"mhs{tag}", f"mhl{tag}"
    (tmp / "roster.csv").write_text(f"id,name\n{student},Test Student\n")
    (tmp / "teaching").mkdir()
    shutil.copyfile(FIXTURE, tmp / "teaching" / FIXTURE.name)
    class_dir = tmp / "class"
    try:
        run("-m", "hub.roster", "add", str(tmp / "roster.csv"), "--lecturer", lecturer, "--class-dir", str(class_dir),
            "--teaching", str(tmp / "teaching"), "--passwords", str(tmp / "passwords.csv"))
        passwords = {r["id"]: r["password"] for r in csv.DictReader(open(tmp / "passwords.csv"))}
        due = time.strftime("%Y-%m-%d %H:%M", time.gmtime(time.time() + 86400))
        run("-m", "hub.course", "--class-dir", str(class_dir), "release", str(tmp / "teaching" / FIXTURE.name),
            "--due", due)
        yield class_dir, student, passwords[student], lecturer, passwords[lecturer]
    finally:
        for pid in processes_of(users=[u for u in (student, lecturer) if _exists(u)]):
            os.kill(pid, signal.SIGKILL)   # only if the test failed midway: the hub's own stop is asserted below
        subprocess.run([sys.executable, "-m", "hub.roster", "remove", str(tmp / "roster.csv"), "--lecturer", lecturer,
                        "--class-dir", str(class_dir)], cwd=ROOT, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
        for p in opened:
            os.chmod(p, os.stat(p).st_mode & ~stat.S_IXOTH)


def _exists(user):
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


def test_a_round_on_the_hub(a_class, tmp_path):
    from playwright.sync_api import sync_playwright

    deadline = time.monotonic() + BUDGET_S
    class_dir, student, password, lecturer, lecturer_password = a_class
    course = class_dir / "course"

    # Only the lecturer may read the course folder: the snapshot with the hidden tests, and the gradebook.
    assert pwd.getpwuid(course.stat().st_uid).pw_name == lecturer and course.stat().st_mode & 0o777 == 0o700
    assert (course / "released" / FIXTURE.name).read_bytes() == FIXTURE.read_bytes()

    (tmp_path / "extra_config.py").write_text(EXTRA_CONFIG)
    taken = socket.socket()
    taken.bind(("127.0.0.1", free_port()))   # the first port tried is taken: the hub moves to the next free one
    taken.listen()
    hub = subprocess.Popen([sys.executable, "-m", "hub.serve", "--class-dir", str(class_dir), "--port",
                            str(taken.getsockname()[1]), "--extra-config", str(tmp_path / "extra_config.py")],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    run_id = None
    try:
        line = hub.stdout.readline()
        if line.startswith("Traceback"):
            line += hub.stdout.read()     # the whole traceback, for the failure message
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, f"hub.serve printed {line!r}; its log: {(class_dir / 'hub' / 'jupyterhub.log').read_text()[-3000:]}"
        assert int(match[1]) > taken.getsockname()[1]
        url, run_id = match[0], hub_run_id(hub.pid)

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})

            def budget():
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"the hub test ran out of its {BUDGET_S} s budget")
                page.set_default_timeout(left * 1000)

            try:
                budget()
                page.goto(f"{url}hub/login")
                page.fill("input[name=username]", student)
                page.fill("input[name=password]", password)
                page.click("input[type=submit], button[type=submit]")
                page.wait_for_url(re.compile(rf"/user/{student}/lab"))
                budget()
                page.locator("#jp-main-dock-panel").wait_for()
                # The assignment list (nbgrader's lab extension): the released assignment is there to fetch.
                page.get_by_role("menuitem", name="Nbgrader").click()
                page.get_by_text("Assignment List", exact=True).click()
                released = page.locator("#released_assignments_list")
                budget()
                released.get_by_text(ASSIGNMENT).first.wait_for()
                released.get_by_role("button", name="Fetch").click()
                fetched = page.locator("#fetched_assignments_list")
                budget()
                fetched.get_by_text(ASSIGNMENT).first.wait_for()
                # Open the notebook, write the first answer in place of its stub, save.
                page.goto(f"{url}user/{student}/lab/tree/{ASSIGNMENT}/{FIXTURE.name}")
                budget()
                stub = page.locator(".jp-Cell", has_text="answer = None").locator(".cm-content")
                stub.click()
                page.keyboard.press("Control+a")
                page.keyboard.type("answer = 16 * 16")
                # Saved once the student's own file holds the answer (the lab may mark the notebook changed again
                # as its kernel starts, so the file, not the tab's mark, says it).
                saved = Path(pwd.getpwnam(student).pw_dir) / ASSIGNMENT / FIXTURE.name
                while "answer = 16 * 16" not in saved.read_text():
                    budget()
                    page.keyboard.press("Control+s")
                    page.wait_for_timeout(1000)
                # Submit from the assignment list.
                page.get_by_role("menuitem", name="Nbgrader").click()
                page.get_by_text("Assignment List", exact=True).click()
                budget()
                page.locator("#fetched_assignments_list").get_by_role("button", name="Submit").click()
                submitted = page.locator("#submitted_assignments_list")
                budget()
                submitted.get_by_text(ASSIGNMENT).first.wait_for()

                # The lecturer's round on the command line: collect, grade in the sandbox, return.
                run("-m", "hub.course", "--class-dir", str(class_dir), "collect", ASSIGNMENT)
                late = list(csv.DictReader(open(course / "grading" / ASSIGNMENT / "late.csv")))
                assert [(r["student"], r["late_by_s"]) for r in late] == [(student, "0")]
                run("-m", "hub.course", "--class-dir", str(class_dir), "grade", ASSIGNMENT, "--cell-timeout", "20",
                    "--notebook-timeout", "60", "--jobs", "1", timeout=max(1, deadline - time.monotonic()))
                totals = list(csv.DictReader(open(course / "grading" / ASSIGNMENT / "grades" / "totals.csv")))
                assert [(r["student"], float(r["points"]), float(r["max_points"])) for r in totals] == \
                    [(student, 1.0, 3.0)]
                run("-m", "hub.course", "--class-dir", str(class_dir), "return", ASSIGNMENT)

                # The lecturer's formgrader shows the grader's points (from the course gradebook).
                desk = browser.new_page()
                desk.set_default_timeout(max(1, deadline - time.monotonic()) * 1000)
                desk.goto(f"{url}hub/login")
                desk.fill("input[name=username]", lecturer)
                desk.fill("input[name=password]", lecturer_password)
                desk.click("input[type=submit], button[type=submit]")
                desk.wait_for_url(re.compile(rf"/user/{lecturer}/lab"))
                desk.goto(f"{url}user/{lecturer}/formgrader/manage_submissions/{ASSIGNMENT}")
                row = desk.locator("tr", has_text=student)
                row.get_by_text("graded", exact=True).wait_for()
                assert "1 / 3" in row.inner_text()
                desk.close()

                # The student fetches the feedback and opens it.
                budget()
                page.reload()
                page.locator("#jp-main-dock-panel").wait_for()
                page.get_by_role("menuitem", name="Nbgrader").click()
                page.get_by_text("Assignment List", exact=True).click()
                budget()
                page.locator("#submitted_assignments_list").get_by_role("button", name="Fetch Feedback").click()
                budget()
                page.locator("#submitted_assignments_list").get_by_text("view feedback").wait_for()
                [feedback] = (Path(pwd.getpwnam(student).pw_dir) / ASSIGNMENT / "feedback").glob("*/*.html")
                relative = feedback.relative_to(pwd.getpwnam(student).pw_dir)
                page.goto(f"{url}user/{student}/files/{relative.as_posix()}")
                text = page.inner_text("body")
                assert "Score: 1.0 / 3.0" in text, text[:2000]
                source = json.loads(FIXTURE.read_text())
                hidden = [line.strip() for cell in source["cells"] for block in
                          re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", "".join(cell["source"]), re.S)
                          for line in block.splitlines() if len(line.strip()) > 3]
                assert hidden and not [line for line in hidden if line in text]
            finally:
                browser.close()
    finally:
        taken.close()
        if hub.poll() is None:
            os.kill(hub.pid, signal.SIGTERM)   # the hub is stopped by its process id
        try:
            hub.wait(timeout=45)
        except subprocess.TimeoutExpired:
            os.killpg(hub.pid, signal.SIGKILL)
            pytest.fail("hub.serve did not stop within 45 s of SIGTERM")
    output = hub.stdout.read()
    assert hub.returncode == 0 and "nothing of it is left running" in output, output
    assert "ended" not in output, f"the hub left processes that hub.serve had to end: {output}"
    left = {pid: describe(pid) for pid in processes_of(run_id, users=[student, lecturer])}
    assert left == {}, f"left running after the hub stopped: {left}"


def describe(pid):
    try:
        command = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        return f"uid {os.stat(f'/proc/{pid}').st_uid}: {command[:200]}"
    except OSError:
        return "gone meanwhile"
