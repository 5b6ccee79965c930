"""Starts the kernel of one graded submission inside its sandbox (course.sandbox writes the sandbox).

nbgrader's kernel manager runs this program instead of the kernel, through the kernelspec that
course.sandbox writes (``kernel.json``'s argv: this file, the sandbox, the connection file):

    python course/kernel.py SANDBOX CONNECTION_FILE [kernel arguments ...]

It runs as the grader (root, when grading as root) and then replaces itself by ipykernel: it copies the
notebook's folder (nbgrader's working copy, which the kernel must not write into: nbgrader writes the
graded notebook there afterwards) into SANDBOX/work, copies the connection file (mode 0600, readable
only by its writer) to SANDBOX/home, hands work/ and home/ to the sandbox's user, sets resource
limits, starts from a clean environment, and execs ipykernel under `setpriv` as that user. The process
id stays the kernel's, so the kernel manager can still interrupt and stop it.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import sys
from pathlib import Path

# What of the grader's environment a kernel sees: thread and CPU settings, the locale, the path.
PASSED = ("PATH", "LANG", "LC_ALL", "TZ", "JPY_PARENT_PID", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
          "OPENBLAS_NUM_THREADS", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
MAX_FILE_BYTES = 1 << 30


def _environment(settings: dict, home: Path) -> dict:
    env = {name: os.environ[name] for name in PASSED if name in os.environ}
    env.update(HOME=str(home), TMPDIR=str(home / "tmp"), MPLCONFIGDIR=str(home / ".matplotlib"),
               PYTHONPATH=os.pathsep.join(settings["pythonpath"]), PYTHONDONTWRITEBYTECODE="1")
    return env


def _hand_over(sandbox: Path, settings: dict, connection_file: str) -> Path:
    work, home = sandbox / "work", sandbox / "home"
    for path in Path.cwd().iterdir():
        if path.is_file() and not path.is_symlink():
            shutil.copy(path, work / path.name)
    (home / "tmp").mkdir(exist_ok=True)
    private = home / ".connection.json"
    private.write_text(Path(connection_file).read_text())
    private.chmod(0o600)
    if settings["uid"] is not None:
        for folder in (work, home):
            for path in [folder, *folder.rglob("*")]:
                os.chown(path, settings["uid"], settings["gid"], follow_symlinks=False)
    return private


def _command(settings: dict, private: Path, kernel_args: list[str]) -> list[str]:
    command = [settings["python"], "-m", "ipykernel_launcher", "-f", str(private), *kernel_args]
    if settings["uid"] is None:
        return command
    uid, gid = settings["uid"], settings["gid"]
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs", "--", *command]


def main(argv: list[str]) -> None:
    sandbox, connection_file, kernel_args = Path(argv[0]), argv[1], argv[2:]
    settings = json.loads((sandbox / "sandbox.json").read_text())
    private = _hand_over(sandbox, settings, connection_file)
    if settings["uid"] is not None:   # counted per user: the sandbox's user has no other processes
        resource.setrlimit(resource.RLIMIT_NPROC, (settings["max_processes"],) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    (sandbox / "kernel.pid").write_text(str(os.getpid()))
    os.chdir(sandbox / "work")
    command = _command(settings, private, kernel_args)
    os.execvpe(command[0], command, _environment(settings, sandbox / "home"))


if __name__ == "__main__":
    main(sys.argv[1:])
