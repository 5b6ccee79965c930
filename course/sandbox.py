"""One sandbox per graded submission: its own folders, gradebook copy, kernelspec, user and bubblewrap jail.

Layout of a sandbox S (inside the grading run's private temporary folder):

    S/course/    the nbgrader course (gradebook.db, source/, release/, submitted/, autograded/): the
                 grader's alone (mode 0700), so a kernel can neither read the hidden tests nor touch the db
    S/kernels/   the kernelspec "sandboxed" that runs course/kernel.py instead of ipykernel
    S/work/      the kernel's working folder: a copy of the notebook's folder ("its folder")
    S/run/       the kernel's connection file and its sockets (Unix sockets: the kernel has no network)
    S/sandbox.json   what course/kernel.py needs: uid, interpreter, PYTHONPATH, limits, what to hide

When the grader runs as root, each sandbox gets a user id of its own (from --uid-base on, one that
no account and no process uses): work/ and run/ belong to it, the kernel runs as it (setpriv, no new
privileges, at most `max_processes` processes), and afterwards every process left with that uid is
killed (kill(-1) sent as that uid).

Inside that user, the kernel runs in bubblewrap (`bwrap`, Debian's bubblewrap, installed by
tools/setup_sandbox.sh): `--unshare-all` (no network: not even 127.0.0.1; its own process ids, so it can
signal nothing outside; its own IPC), `--die-with-parent` (nothing of it outlives its grading process,
a `setsid` child included: the process namespace ends with it), `--new-session`, `--ro-bind / /` (the
system read-only), a private /tmp and HOME (tmpfs of `tmp_bytes`), an empty folder over the teaching
notebooks, the whole checkout but its environment, the submissions, the grades folder and every
other sandbox, and its own work/ and run/ bind-mounted read-write. Limits (setrlimit, inherited):
processes, address space, file size, CPU seconds, no core files. The interpreter, its packages and the
checkout's `minicam` stay visible read-only; when one of them lies below a folder other users cannot
enter (a checkout in a 0700 folder), the launcher, still root, first mounts an empty folder over that
folder in a mount namespace of the kernel's own and binds them back, so grading works from any checkout.

Where bwrap cannot run (not installed, no user namespaces), course.grade stops with a message unless
`--unsandboxed` is given: then the kernel runs as its own user (root) or as the grader (not root), with
the limits, and nothing hides the machine's files from it (README.md, "Course edition").
"""
from __future__ import annotations

import copy
import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

KERNEL_NAME = "sandboxed"
LAUNCHER = Path(__file__).resolve().with_name("kernel.py")
ROOT = Path(__file__).resolve().parents[1]
MAX_PROCESSES = 256
MEMORY_BYTES = 8 << 30       # address space: importing torch takes about 3.7 GB of it
FILE_BYTES = 256 << 20
TMP_BYTES = 256 << 20


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


def environment_paths() -> list[str]:
    """What a kernel must see read-only: the interpreter's prefixes, the checkout's minicam, PYTHONPATH."""
    paths = [sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable)),
             os.path.dirname(os.path.abspath(sys.executable)), str(ROOT / "minicam")]
    venv = os.path.dirname(os.path.dirname(os.path.abspath(sys.executable)))   # the interpreter's own venv
    if os.path.isfile(os.path.join(venv, "pyvenv.cfg")):
        paths.append(venv)
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    found = []
    for path in paths:
        real = os.path.realpath(path)
        if os.path.isdir(real) and real not in found:
            found.append(real)
    return found


def closed_ancestor(path: str) -> str | None:
    """The topmost folder above (or at) `path` that other users cannot enter (no x for others), or None."""
    parts = Path(path).parts
    for i in range(2, len(parts) + 1):
        folder = os.path.join(*parts[:i])
        try:
            if not os.stat(folder).st_mode & stat.S_IXOTH:
                return folder
        except OSError:
            return None
    return None


def bwrap_problem(uid: int | None) -> str | None:
    """Why bubblewrap cannot sandbox a kernel here (as the sandbox's user), or None if it can."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed (tools/setup_sandbox.sh installs it, as root: apt-get install bubblewrap)"
    command = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/", "/",
               "--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev", "--", "true"]
    if uid is not None:
        command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", "--", *command]
    run = subprocess.run(command, cwd="/", capture_output=True, text=True)
    if run.returncode == 0:
        return None
    said = (run.stderr.strip().splitlines() or [f"exit status {run.returncode}"])[-1]
    return f"bubblewrap cannot make a sandbox here ({said[-300:]}; are user namespaces turned off?)"


def python_problem(uid: int | None, bwrap: bool = False) -> str | None:
    """Why the sandbox's user cannot start a kernel with this environment's Python, or None if it can.
    As root without bwrap, the usual reason is a checkout (and its .venv) inside a folder other users
    cannot enter: a home folder of mode 0700, or a folder made by mktemp -d. With bwrap that folder is
    mounted over (course/kernel.py), so only the interpreter itself is tried."""
    if bwrap and uid is not None:
        return None   # the launcher opens closed folders for the kernel (mounts as root): nothing to try here
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
    """The sandbox cannot be made here: a matter of the machine or of where the checkout is, not a bug."""


def check_python(uid: int | None, bwrap: bool = False) -> None:
    """Raises SandboxUnavailable if the sandbox's user cannot start a kernel with this environment's Python."""
    problem = python_problem(uid, bwrap)
    if problem:
        raise SandboxUnavailable(f"{problem}: make the interpreter, its packages and every folder above them "
                                 "readable to other users (e.g. clone into /srv or /opt, not into a 0700 folder), "
                                 "or grade with --same-user (make grade SAME_USER=1) inside a container or VM made "
                                 "for grading")


def check_bwrap(uid: int | None) -> None:
    """Raises SandboxUnavailable, naming --unsandboxed, if bubblewrap cannot run here."""
    problem = bwrap_problem(uid)
    if problem:
        raise SandboxUnavailable(f"{problem}: submissions are untrusted code, so grading stops here. Install "
                                 "bubblewrap (tools/setup_sandbox.sh), or, only in a container or VM made for "
                                 "grading, grade without it with --unsandboxed (make grade UNSANDBOXED=1)")


@dataclass
class Limits:
    processes: int = MAX_PROCESSES
    memory_bytes: int = MEMORY_BYTES
    file_bytes: int = FILE_BYTES
    tmp_bytes: int = TMP_BYTES
    cpu_seconds: int = 600


@dataclass
class Sandbox:
    root: Path
    uid: int | None
    bwrap: bool = True
    hide: list = field(default_factory=list)     # folders the kernel must not see (an empty folder over each)
    limits: Limits = field(default_factory=Limits)

    @property
    def course(self) -> Path:
        return self.root / "course"

    def create(self) -> "Sandbox":
        for name, mode in (("", 0o711), ("course", 0o700), ("work", 0o700), ("run", 0o700)):
            (self.root / name).mkdir(mode=mode, exist_ok=True)
            (self.root / name).chmod(mode)
        spec = self.root / "kernels" / KERNEL_NAME
        spec.mkdir(parents=True)
        argv = [sys.executable, str(LAUNCHER), str(self.root), "{connection_file}"]
        # bwrap --new-session puts the kernel in a session of its own, out of reach of the kernel manager's
        # killpg: interrupts go as messages (ipykernel then signals itself)
        spec.joinpath("kernel.json").write_text(json.dumps(
            {"argv": argv, "display_name": "Python 3 (graded)", "language": "python",
             "interrupt_mode": "message" if self.bwrap else "signal"}))
        pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        self.root.joinpath("sandbox.json").write_text(json.dumps(
            {"uid": self.uid, "gid": self.uid, "python": sys.executable, "pythonpath": pythonpath,
             "bwrap": self.bwrap, "hide": [str(p) for p in self.hide], "keep": environment_paths(),
             "max_processes": self.limits.processes, "memory_bytes": self.limits.memory_bytes,
             "file_bytes": self.limits.file_bytes, "tmp_bytes": self.limits.tmp_bytes,
             "cpu_seconds": self.limits.cpu_seconds}))
        return self

    def environment(self) -> dict[str, str]:
        """What the grading process sets before nbgrader starts the kernel."""
        return {"JUPYTER_PATH": str(self.root), "JUPYTER_RUNTIME_DIR": str(self.course / ".runtime")}

    def kernel_config(self, config) -> None:
        """The kernel's sockets: Unix sockets in run/ (a kernel in bwrap has no network to listen on)."""
        if self.bwrap:
            config.KernelManager.transport = "ipc"
            config.KernelManager.ip = str(self.root / "run" / "kernel")

    def stop(self) -> None:
        """Kill whatever the submission left running: every process of its user, or (not root) the
        kernel's process group (bwrap's, whose end ends every process of the sandbox)."""
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


def _children() -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat_file.read_text()
            ppid = int(text[text.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        found.setdefault(ppid, []).append(int(stat_file.parent.name))
    return found


def _processes_of(uid: int) -> list[int]:
    """The live processes (not zombies) of user `uid`."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if int(fields.get("Uid", "-1 0").split()[0]) == uid and not fields.get("State", "").strip().startswith("Z"):
            found.append(int(status.parent.name))
    return found


def strays(launcher: int) -> list[int]:
    """The processes below the kernel's launcher (bwrap, or the kernel itself) other than the chain down to
    the kernel (the process running `python -m ipykernel_launcher`; bwrap's own arguments name it too)."""
    children, below, chain = _children(), [], []
    todo = [launcher]
    while todo:
        pid = todo.pop()
        below.append(pid)
        todo += children.get(pid, [])
    for pid in below:
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:3] == [b"-m", b"ipykernel_launcher"]:
                kernel = pid
                break
        except OSError:
            continue
    else:
        return []
    pid = kernel
    while pid != launcher and pid > 1:
        chain.append(pid)
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
            pid = int(text[text.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            break
    return [p for p in below if p != launcher and p not in chain]


def _cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
            fields = text[text.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])     # utime, stime
        except (OSError, ValueError, IndexError):
            continue
    return total


def busy(pids: list[int], seconds: float = 0.3) -> bool:
    """Whether any of `pids` uses the CPU (a sleeping leftover, such as a `sleep 300`, does not)."""
    if not pids:
        return False
    before = _cpu_ticks(pids)
    time.sleep(seconds)
    return _cpu_ticks(pids) > before


# --- a failing cell costs only itself: nbgrader's Execute, restarted past a cell that ends its kernel ---------

def _executor_class():
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbclient.client import NotebookClient
    from nbformat import NotebookNode
    from nbgrader.preprocessors import Execute
    from traitlets import Integer

    class RestartingExecute(Execute):
        """nbgrader's Execute, except that a cell that ends its kernel (os._exit, kill -1, a crash, running out
        of memory) or that does not stop when interrupted at the cell limit does not end the grading: that cell
        gets an error output saying what happened (so its exercise scores 0), a new kernel runs every code cell
        before it again (their outputs from the first kernel are kept) and the rest of the notebook from the
        cell after it. So `os._exit(0)` after the first answer costs the exercises that depend on that cell
        and no more. At most `max_restarts` restarts; the notebook limit (course.grade) bounds the time."""

        max_restarts = Integer(4, help="kernels started again past a cell that ended one").tag(config=True)
        interrupt_grace = Integer(10, help="seconds an interrupted cell has to stop").tag(config=True)
        sandbox_uid = Integer(-1, help="the sandbox's own user id, if it has one").tag(config=True)

        async def _async_handle_timeout(self, timeout, cell=None):
            self._interrupted = True
            self._saved_iopub, self.iopub_timeout = self.iopub_timeout, min(self.iopub_timeout, self.interrupt_grace)
            return await super()._async_handle_timeout(timeout, cell)

        def preprocess(self, nb, resources=None, km=None):
            failed: dict[int, str] = {}
            restarts = 0
            while True:
                NotebookClient.__init__(self, nb, km)
                self.reset_execution_trackers()
                self._check_assign_resources(resources)
                done = max(failed, default=-1)
                try:
                    with self.setup_kernel():
                        info_msg = self.wait_for_reply(self.kc.kernel_info())
                        self.nb.metadata["language_info"] = info_msg["content"]["language_info"]
                        for index, cell in enumerate(self.nb.cells):
                            if index in failed:
                                continue
                            if index < done:   # again, in the new kernel: the state, not the outputs
                                if cell.cell_type == "code":
                                    self._run(copy.deepcopy(cell), index)
                                continue
                            try:
                                self._run(cell, index)
                            except (DeadKernelError, CellTimeoutError) as err:
                                what = ("the kernel ended while this cell ran (os._exit, a signal, or out of memory)"
                                        if isinstance(err, DeadKernelError) else
                                        "this cell did not stop when interrupted at the cell limit")
                                cell.outputs = [NotebookNode(output_type="error", ename="KernelStopped",
                                                             evalue=what, traceback=[f"KernelStopped: {what}"])]
                                failed[index] = what
                                left = [self.km.provisioner.process.pid, *strays(self.km.provisioner.process.pid)]
                                self.log.warning("cell %d: %s (%s); a new kernel runs the cells before it and goes on",
                                                 index, what, str(err).splitlines()[0] if str(err) else type(err).__name__)
                                raise _Restart() from None
                    break
                except _Restart:
                    _end(left, self.sandbox_uid if self.sandbox_uid >= 0 else None)
                    restarts += 1
                    if restarts > self.max_restarts:
                        self.log.warning("more than %d kernels ended: the rest of the notebook is not run",
                                         self.max_restarts)
                        for index, cell in enumerate(self.nb.cells):
                            if index > max(failed) and cell.cell_type == "code":
                                cell.outputs = [NotebookNode(output_type="error", ename="KernelStopped",
                                                             evalue="not run", traceback=["KernelStopped: not run"])]
                        break
            self.set_widgets_metadata()
            return self.nb, self.resources

        def _run(self, cell, index):
            self._interrupted = False
            try:
                self.execute_cell(cell, index, store_history=True)
            finally:
                if self._interrupted:
                    self.iopub_timeout = self._saved_iopub
            if self._interrupted and busy(strays(self.km.provisioner.process.pid)):
                # stopped at the cell limit, but what it started still computes (a fork bomb): end that kernel
                raise CellTimeoutError("this cell left processes running past the cell limit")

    class _Restart(Exception):
        pass

    def _end(pids: list[int], uid: int | None) -> None:
        """Kill what the ended kernel left (all of its user's processes, if it has its own), and wait until
        it is gone: a new kernel of the same user needs its process slots."""
        for _ in range(200):
            if uid is not None:
                _kill_all_of(uid)
                alive = _processes_of(uid)
            else:
                alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
                for pid in alive:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            if not alive:
                return
            time.sleep(0.05)

    return RestartingExecute


def executor_class():
    global _EXECUTOR
    try:
        return _EXECUTOR
    except NameError:
        _EXECUTOR = _executor_class()
        return _EXECUTOR
