"""One sandbox per graded submission: its own folders, gradebook copy, kernelspec and (as root) user.

Layout of a sandbox S (inside the grading run's private temporary folder):

    S/course/    the nbgrader course (gradebook.db, source/, release/, submitted/, autograded/): the
                 grader's alone (mode 0700), so a kernel can neither read the hidden tests nor touch the db
    S/kernels/   the kernelspec "sandboxed" that runs course/kernel.py instead of ipykernel
    S/work/      the kernel's working folder: a copy of the notebook's folder ("its folder")
    S/home/      the kernel's HOME and TMPDIR
    S/sandbox.json   what course/kernel.py needs: uid, gid, interpreter, PYTHONPATH, process limit

When the grader runs as root, each sandbox gets a user id of its own (from --uid-base on, one that
no account and no process uses): work/ and home/ belong to it, the kernel runs as it (setpriv, no
new privileges, at most `max_processes` processes), and afterwards every process left with that uid is
killed (kill(-1) sent as that uid), so a submission's leftover process cannot reach another submission's
files. As a normal user the kernel runs as that user: nothing stops it from reading or deleting what the
user can (README.md, "Course edition", says what needs a container).
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

KERNEL_NAME = "sandboxed"
LAUNCHER = Path(__file__).resolve().with_name("kernel.py")
MAX_PROCESSES = 256


def as_root() -> bool:
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


def _uids_in_use() -> set[int]:
    used = {entry.pw_uid for entry in pwd.getpwall()}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            used |= {int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith("Uid:")}
        except (OSError, IndexError, ValueError):
            continue   # the process ended while we looked
    return used


def free_uids(base: int, count: int) -> list[int]:
    """`count` user ids from `base` on that no account and no running process has."""
    used, found, uid = _uids_in_use(), [], base
    while len(found) < count:
        if uid not in used:
            found.append(uid)
        uid += 1
    return found


def python_problem(uid: int | None) -> str | None:
    """Why the sandbox's user cannot start a kernel with this environment's Python, or None if it can.
    As root, the usual reason is a checkout (and its .venv) inside a folder other users cannot enter:
    a home folder of mode 0700, or a folder made by mktemp -d."""
    command = [sys.executable, "-c", "import ipykernel"]
    if uid is not None:
        command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--", *command]
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "HOME": "/"}
    run = subprocess.run(command, env=env, cwd="/", capture_output=True, text=True)
    if run.returncode == 0:
        return None
    said = (run.stderr.strip().splitlines() or [f"exit status {run.returncode}"])[-1]   # the error, not its traceback
    return f"user {uid} cannot start a kernel with {sys.executable} ({said[-300:]})"


class SandboxUnavailable(RuntimeError):
    """The sandbox's user cannot start a kernel here: a matter of where the checkout is, not a bug."""


def check_python(uid: int | None) -> None:
    """Raises SandboxUnavailable if the sandbox's user cannot start a kernel with this environment's Python."""
    problem = python_problem(uid)
    if problem:
        raise SandboxUnavailable(f"{problem}: make the interpreter, its packages and every folder above them "
                                 "readable to other users (e.g. clone into /srv or /opt, not into a 0700 folder), "
                                 "or grade with --same-user (make grade SAME_USER=1) inside a container or VM made "
                                 "for grading")


@dataclass
class Sandbox:
    root: Path
    uid: int | None

    @property
    def course(self) -> Path:
        return self.root / "course"

    def create(self) -> "Sandbox":
        for name, mode in (("", 0o711), ("course", 0o700), ("work", 0o700), ("home", 0o700)):
            (self.root / name).mkdir(mode=mode, exist_ok=True)
            (self.root / name).chmod(mode)
        spec = self.root / "kernels" / KERNEL_NAME
        spec.mkdir(parents=True)
        argv = [sys.executable, str(LAUNCHER), str(self.root), "{connection_file}"]
        spec.joinpath("kernel.json").write_text(json.dumps(
            {"argv": argv, "display_name": "Python 3 (graded)", "language": "python", "interrupt_mode": "signal"}))
        pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        self.root.joinpath("sandbox.json").write_text(json.dumps(
            {"uid": self.uid, "gid": self.uid, "python": sys.executable, "pythonpath": pythonpath,
             "max_processes": MAX_PROCESSES}))
        return self

    def environment(self) -> dict[str, str]:
        """What the grading process sets before nbgrader starts the kernel."""
        return {"JUPYTER_PATH": str(self.root), "JUPYTER_RUNTIME_DIR": str(self.course / ".runtime")}

    def stop(self) -> None:
        """Kill whatever the submission left running: every process of its user, or (not root) the
        kernel's process group."""
        if self.uid is not None:
            _kill_all_of(self.uid)
            return
        pid_file = self.root / "kernel.pid"
        if pid_file.exists():
            try:
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
            except (ProcessLookupError, PermissionError, ValueError):
                pass

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _kill_all_of(uid: int) -> None:
    """kill(-1, SIGKILL) sent by a process running as `uid` reaches exactly the processes of `uid`."""
    for _ in range(5):   # a process forking while we kill: repeat until a round finds none
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                os._exit(0)
            except BaseException:
                os._exit(2)
            os._exit(1)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) == 0:
            return
