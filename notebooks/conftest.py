"""nbval, plus one more test item per notebook with nbgrader exercises: `NN_topic.ipynb::exercises`.

The item runs after the notebook's last cell, in the notebook's own nbval kernel (so it costs a few cell
runs, not another run of the notebook; with `--dist loadfile` it stays on the worker of its notebook).
For each exercise, in order (conventions: course/exercises.py):

1. the stub (the answer cell as the student edition has it, by nbgrader's ClearSolutions) raises
   NotImplementedError, and the test cell, hidden tests included, then fails with an AssertionError;
2. each wrong answer of tests/wrong_answers.py (put in place of the solution region) runs, and the test
   cell then fails with an AssertionError;
3. the solution runs and the test cell passes, printing "correct" and nothing on stderr, which leaves the
   kernel as the notebook left it.

A failure lists every broken check with its notebook and grade_id.
"""
from __future__ import annotations

import runpy
import sys
from pathlib import Path
from queue import Empty

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from course.exercises import exercises  # noqa: E402  (after the path, for a run from anywhere)


def pytest_collection_modifyitems(session, config, items):
    last = {}
    for index, item in enumerate(items):
        if type(item.parent).__name__ == "IPyNbFile":
            last[item.parent] = index
    for notebook, index in sorted(last.items(), key=lambda pair: pair[1], reverse=True):
        if exercises(notebook.nb):
            items.insert(index + 1, ExerciseChecks.from_parent(notebook, name="exercises"))


class ExerciseFailure(Exception):
    pass


def _run(kernel, code: str, timeout: float) -> dict:
    """Run `code` in the nbval kernel: {"ename": error name or None, "stdout": ..., "stderr": ...}."""
    msg_id = kernel.execute_cell_input(code, allow_stdin=False)
    kernel.await_reply(msg_id, timeout=timeout)
    result = {"ename": None, "evalue": "", "stdout": "", "stderr": ""}
    while True:
        msg = kernel.get_message("iopub", timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "status" and content["execution_state"] == "idle":
            return result
        if kind == "stream":
            result[content["name"]] += content["text"]
        elif kind == "error":
            result["ename"], result["evalue"] = content["ename"], content["evalue"]


def _replace_solution(cell, code: str | None) -> str:
    """The answer cell with its solution region replaced by `code` (None: nbgrader's own stub)."""
    from nbgrader.preprocessors import ClearSolutions

    clear = ClearSolutions() if code is None else ClearSolutions(code_stub={"python": code})
    copy = cell.copy()
    clear.preprocess_cell(copy, {"language": "python"}, 0)
    return copy.source


class ExerciseChecks(pytest.Item):
    def runtest(self):
        pytest.importorskip("nbgrader", reason="the exercise checks need nbgrader (pip install minicam[course])")
        kernel = self.parent.kernel
        if kernel is None or not kernel.is_alive():
            raise ExerciseFailure(f"{self.path.name}: the notebook's kernel is not running (did a cell above fail?)")
        wrong = runpy.run_path(str(ROOT / "tests" / "wrong_answers.py"))["WRONG_ANSWERS"].get(self.path.stem, {})
        timeout = self.config.option.nbval_cell_timeout
        problems = []
        for ex in exercises(self.parent.nb):
            problems += self._check(kernel, ex, wrong.get(ex.grade_id, []), timeout)
        if problems:
            raise ExerciseFailure("\n".join(problems))

    def _check(self, kernel, ex, wrong_answers: list[str], timeout: float) -> list[str]:
        cells, name = self.parent.nb.cells, f"{self.path.name} {ex.grade_id}"
        answer, test = cells[ex.answer], cells[ex.test].source
        out = [] if wrong_answers else [f"{name}: no wrong answer in tests/wrong_answers.py (add one at least)"]
        try:
            stub = _run(kernel, _replace_solution(answer, None), timeout)
            if stub["ename"] != "NotImplementedError":
                out.append(f"{name}: the stub should raise NotImplementedError, got {stub['ename']}")
            out += self._expect_failure(kernel, test, timeout, f"{name}: on the stub")
            for code in wrong_answers:
                ran = _run(kernel, _replace_solution(answer, code), timeout)
                if ran["ename"]:
                    out.append(f"{name}: the wrong answer {code!r} raised {ran['ename']}: {ran['evalue']}")
                out += self._expect_failure(kernel, test, timeout, f"{name}: on the wrong answer {code!r}")
            solved, passed = _run(kernel, answer.source, timeout), _run(kernel, test, timeout)
        except Empty:
            return out + [f"{name}: no reply from the kernel within {timeout} s"]
        if solved["ename"] or passed["ename"] or passed["stdout"] != "correct\n" or passed["stderr"]:
            out.append(f"{name}: on the solution the test should print 'correct' alone, got error "
                       f"{passed['ename'] or solved['ename']}: {passed['evalue'] or solved['evalue']}, "
                       f"stdout {passed['stdout']!r}, stderr {passed['stderr']!r}")
        return out

    @staticmethod
    def _expect_failure(kernel, test: str, timeout: float, where: str) -> list[str]:
        ran = _run(kernel, test, timeout)
        if ran["ename"] == "AssertionError" and ran["evalue"]:
            return []
        return [f"{where} the test cell should fail with an AssertionError and a message, "
                f"got {ran['ename'] or 'a pass'}: {ran['evalue']!r}"]

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, ExerciseFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, f"{self.path.name}::exercises"
