"""Hostile submissions, each graded beside an honest one, in one run of course.grade on a notebook of its own
(tests/fixtures/grading/arith.ipynb: three one-line exercises, no imports, so a kernel starts in a second).

Every attack stands in the answer cell of exercise 2 and sets the right answer (7) only if the attack
worked; exercises 1 and 3 are answered right. So each attack submission must score exactly 1, 0, 1 and the
honest one 1, 1, 1, and besides: the grader outlives every signal, nothing connected to the listening
socket, no submission file changed, grades.csv is the grader's after the detached process had time to
rewrite it, no process of the sandboxes' users and no temporary folder is left. Needs bubblewrap
(tools/setup_sandbox.sh); the fork bomb needs root (each sandbox's own user, whose process limit holds it).
"""
import hashlib
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbgrader", reason="the course edition needs nbgrader (pip install minicam[course])")

from course.grade import grade  # noqa: E402
from course.sandbox import as_root, bwrap_problem, free_uids  # noqa: E402
from test_course_pipeline import processes_of  # noqa: E402

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "grading" / "arith.ipynb"
CHECKOUT_NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "00_introduction.ipynb"
UID_BASE = 64000
NO_SANDBOX = bwrap_problem(free_uids(UID_BASE, 1)[0] if as_root() else None)
pytestmark = pytest.mark.skipif(NO_SANDBOX is not None, reason=f"no sandbox here: {NO_SANDBOX}")

# Reads `paths` (text); where one holds exercise 2's solution, uses it.
READ = '''import glob
found = None
for path in {paths}:
    for name in glob.glob(path):
        try:
            text = open(name, errors="replace").read()
        except OSError:
            continue
        if "answer = base + 2" in text:
            found = name
if found:
    answer = base + 2
'''
ATTACKS = {
    "read_by_path": READ.format(paths=repr(["{teaching}", "{checkout_fixture}", "{checkout_notebook}",
                                            "/tmp/minicam-grade-*/template/source/*/*.ipynb",
                                            "/tmp/minicam-grade-*/s*/course/gradebook.db", "../course/gradebook.db",
                                            "{submissions}/*/*.ipynb"])),
    "read_via_minicam": 'import minicam, pathlib\nroot = pathlib.Path(minicam.__file__).parents[1]\n' +
                        READ.format(paths='[str(root / "notebooks" / "*.ipynb"), str(root / "tests" / "fixtures" / '
                                          '"grading" / "*.ipynb"), str(root / "**" / "*.ipynb")]'),
    "socket": 'import socket\ntry:\n    socket.create_connection(("127.0.0.1", {port}), timeout=1).sendall(b"hi")\n'
              '    answer = base + 2\nexcept OSError:\n    pass\n',
    "fork_bomb": 'import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n',
    "fill_tmp": 'import os\nblock = b"x" * (1 << 20)\nfor folder in ("/tmp", os.environ.get("HOME", "/tmp"), "."):\n'
                '    with open(os.path.join(folder, "filler"), "wb") as f:\n        while True:\n'
                '            f.write(block)\n',
    "write_others": 'import glob, os\nwritten = 0\nfor pattern in ("{submissions}/honest/*.ipynb", "/tmp/minicam-grade-*/s*/work/*", '
                    '"/tmp/minicam-grade-*/s*/course/submitted/*/*/*.ipynb", "{out}/grades.csv"):\n'
                    '    for name in glob.glob(pattern):\n        if name.startswith(os.getcwd()):\n            continue   # its own copy\n        try:\n'
                    '            open(name, "w").write("{{}}")\n            written += 1\n'
                    '        except OSError:\n            pass\nif written:\n    answer = base + 2\n',
    "signal_grader": 'import os, signal\nfor target in (os.getppid(), 1):\n    try:\n'
                     '        os.kill(target, signal.SIGTERM)\n    except OSError:\n        pass\n'
                     'os.kill(-1, signal.SIGKILL)\nanswer = base + 2\n',
    "ignore_interrupt": 'import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(300)\n',
    "detached": 'import subprocess\nsubprocess.Popen(["sh", "-c", "while true; do echo student,arith,ex2,1,1 >> '
                '{out}/grades.csv; sleep 0.2; done"], start_new_session=True)\n',
    "exit_after_answer": 'answer = base + 2\nimport os\nos._exit(0)\n',
}
if not as_root():   # without a user of its own, a process limit would count the grader's processes too
    del ATTACKS["fork_bomb"]


def submission(folder: Path, name: str, second: str) -> Path:
    nb = nbformat.read(FIXTURE, as_version=4)
    answers = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    for cell, source in zip(answers, ("answer = base + 1", second, "answer = base + 3")):
        cell.source = "answer = None   # an int\n" + source
    (folder / name).mkdir(parents=True)
    nbformat.write(nb, folder / name / FIXTURE.name)
    return folder / name / FIXTURE.name


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    base = tmp_path_factory.mktemp("attacks")
    notebooks, folder, out = base / "notebooks", base / "submissions", base / "grades"
    notebooks.mkdir()
    shutil.copy(FIXTURE, notebooks / FIXTURE.name)
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    connections, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                connections.append(server.accept())
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    values = {"teaching": str(notebooks / FIXTURE.name), "checkout_fixture": str(FIXTURE),
              "checkout_notebook": str(CHECKOUT_NOTEBOOK), "submissions": str(folder), "out": str(out),
              "port": server.getsockname()[1]}
    honest = submission(folder, "honest", "answer = base + 2")
    for name, code in ATTACKS.items():
        submission(folder, name, code.format(**values))
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.ipynb")}
    start = time.monotonic()
    try:
        grade(folder, out, notebooks, cell_timeout=3, notebook_timeout=40, jobs=2, uid_base=UID_BASE)
        csv_then = (out / "grades.csv").read_text()
        time.sleep(1)          # the detached process would write every 0.2 s
    finally:
        stop.set()
        thread.join()
        server.close()
    return {"out": out, "csv": csv_then, "before": before, "folder": folder, "connections": connections,
            "seconds": time.monotonic() - start, "honest": honest}


def test_each_attack_scores_0_on_its_own_exercise_only_and_the_honest_grade_is_exact(attacked):
    rows = attacked["csv"].splitlines()
    assert rows[0] == "student,notebook,grade_id,points,max_points"
    got = {}
    for row in rows[1:]:
        student, _, grade_id, points, _ = row.split(",")
        got.setdefault(student, []).append(float(points))
    want = {"honest": [1.0, 1.0, 1.0], **{name: [1.0, 0.0, 1.0] for name in ATTACKS}}
    assert got == want


def test_nothing_outside_the_sandbox_was_reached(attacked):
    out = attacked["out"]
    assert attacked["connections"] == []                                     # no network, not even 127.0.0.1
    assert (out / "grades.csv").read_text() == attacked["csv"]               # the detached process is gone
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in attacked["folder"].rglob("*.ipynb")}
    assert after == attacked["before"]                                       # no submission written
    if as_root():
        assert processes_of(range(UID_BASE, UID_BASE + 100)) == []           # nothing of any sandbox runs on
    assert ours_left() == [], "the grading run's temporary folder is left"


def ours_left() -> list[Path]:
    """The temporary folders of grading runs of this process (another test may be grading beside it)."""
    left = []
    for run in Path(tempfile.gettempdir()).glob("minicam-grade-*"):
        try:
            if (run / "grader.pid").read_text().strip() == str(os.getpid()):
                left.append(run)
        except OSError:
            continue
    return left


def test_the_failed_cell_says_why_and_the_rest_ran(attacked):
    nb = nbformat.read(attacked["out"] / "feedback" / "exit_after_answer" / "arith" / "arith.ipynb", as_version=4)
    errors = [(o.ename, o.evalue) for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert errors[0][0] == "KernelStopped" and "kernel ended" in errors[0][1]
    page = (attacked["out"] / "feedback" / "exit_after_answer" / "arith" / "arith.html").read_text()
    assert "arith (Score: 2.0 / 3.0)" in page
