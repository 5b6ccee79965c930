"""Starts the kernel of one graded submission inside its sandbox (course.sandbox writes the sandbox).

nbgrader's kernel manager runs this program instead of the kernel, through the kernelspec that
course.sandbox writes (``kernel.json``'s argv: this file, the sandbox, the connection file):

    python course/kernel.py SANDBOX CONNECTION_FILE [kernel arguments ...]

It runs as the grader (root, when grading as root) and then replaces itself by the kernel: it copies the
notebook's folder (nbgrader's working copy, which the kernel must not write into: nbgrader writes the
graded notebook there afterwards) into SANDBOX/work, copies the connection file (mode 0600, readable
only by its writer) to SANDBOX/run, hands work/ and run/ to the sandbox's user, sets resource limits,
starts from a clean environment, and execs `setpriv` (as root: the sandbox's user, no new privileges)
then `bwrap` (course.sandbox says what the kernel sees) then ipykernel. The process id stays the
launcher's (bwrap's), so the kernel manager can still stop it; interrupts go as messages.
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import sys
from pathlib import Path

# What of the grader's environment a kernel sees: thread and CPU settings, the locale, the path.
PASSED = ("PATH", "LANG", "LC_ALL", "TZ", "JPY_PARENT_PID", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
          "OPENBLAS_NUM_THREADS", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
CLONE_NEWNS, MS_BIND, MS_REC, MS_PRIVATE, MS_RDONLY, MS_REMOUNT = 0x20000, 4096, 16384, 1 << 18, 1, 32


def _environment(settings: dict, home: Path) -> dict:
    env = {name: os.environ[name] for name in PASSED if name in os.environ}
    if settings["bwrap"]:   # the kernel's parent is bwrap's process 1 (so ipykernel would think it gone);
        env.pop("JPY_PARENT_PID", None)   # --die-with-parent ends it with its grading process instead
    env.update(HOME=str(home), TMPDIR=str(home / "tmp") if not settings["bwrap"] else "/tmp",
               MPLCONFIGDIR=str(home / ".matplotlib"),
               PYTHONPATH=os.pathsep.join(settings["pythonpath"]), PYTHONDONTWRITEBYTECODE="1")
    return env


def _hand_over(sandbox: Path, settings: dict, connection_file: str) -> Path:
    work, run = sandbox / "work", sandbox / "run"
    for path in Path.cwd().iterdir():
        if path.is_file() and not path.is_symlink():
            shutil.copy(path, work / path.name)
    if not settings["bwrap"]:
        (run / "tmp").mkdir(exist_ok=True)
    private = run / ".connection.json"
    private.write_text(Path(connection_file).read_text())
    private.chmod(0o600)
    if settings["uid"] is not None:
        for folder in (work, run):
            for path in [folder, *folder.rglob("*")]:
                os.chown(path, settings["uid"], settings["gid"], follow_symlinks=False)
    return private


def _mount(libc, source, target, fstype, flags, data=None) -> None:
    if libc.mount(source and source.encode(), target.encode(), fstype and fstype.encode(), flags,
                  data and data.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def _open_closed_folders(settings: dict) -> None:
    """As root: in a mount namespace of the kernel's own, an empty folder (0755) over the topmost folder
    other users cannot enter above each thing the kernel needs (the interpreter, its venv, the checkout's
    minicam), and those things bound back, read-only, at their own paths (a needed folder that is itself
    closed: each of its entries)."""
    from course.sandbox import closed_ancestor   # noqa: the checkout is on sys.path (this file's parent)
    closed = {}
    for path in settings["keep"]:
        folder = closed_ancestor(path)
        if folder:
            closed.setdefault(folder, []).append(path)
    if not closed:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    binds = []   # (fd of the original, target), opened in the new namespace, before anything is covered
    for folder, paths in closed.items():
        for path in sorted(set(paths), key=len):
            if os.stat(path).st_mode & 0o001:
                binds.append((os.open(path, os.O_PATH), path))
            else:
                for name in sorted(os.listdir(path)):
                    entry = os.path.join(path, name)
                    binds.append((os.readlink(entry) if os.path.islink(entry) else os.open(entry, os.O_PATH), entry))
    for folder in sorted(closed, key=len):
        _mount(libc, "tmpfs", folder, "tmpfs", 0, "mode=0755,size=1m")
    for fd, target in binds:
        if isinstance(fd, str):          # a symbolic link: made again
            _make(Path(target).parent)
            if not os.path.lexists(target):
                os.symlink(fd, target)
            continue
        is_dir = os.path.isdir(f"/proc/self/fd/{fd}")
        _make(Path(target) if is_dir else Path(target).parent)
        if not is_dir and not os.path.lexists(target):
            Path(target).touch(mode=0o644)
        _mount(libc, f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
        _mount(libc, None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def _make(folder: Path) -> None:
    """`folder` and those above it that are missing, each 0755 (whatever the umask)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
        path.chmod(0o755)


def _bwrap(settings: dict, sandbox: Path) -> list[str]:
    work, run = str(sandbox / "work"), str(sandbox / "run")
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/", "/",
            "--proc", "/proc", "--dev", "/dev"]
    for hidden in ["/tmp", *settings["hide"]]:
        if hidden != "/tmp" and (hidden.startswith("/tmp/") or not os.path.isdir(hidden)):
            continue   # under the private /tmp already, or not there
        args += ["--size", str(settings["tmp_bytes"]), "--tmpfs", hidden] if hidden == "/tmp" else ["--tmpfs", hidden]
        for keep in settings["keep"]:     # the environment (the checkout's minicam, its .venv) stays visible
            if keep.startswith(hidden.rstrip("/") + "/"):
                args += ["--ro-bind", keep, keep]
    args += ["--bind", work, work, "--bind", run, run, "--dir", "/tmp/home", "--chdir", work, "--"]
    return args


def _command(settings: dict, private: Path, kernel_args: list[str], sandbox: Path) -> list[str]:
    command = [settings["python"], "-m", "ipykernel_launcher", "-f", str(private), *kernel_args]
    if settings["bwrap"]:
        command = _bwrap(settings, sandbox) + command
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
        if settings["bwrap"]:
            _open_closed_folders(settings)
    for limit, value in ((resource.RLIMIT_FSIZE, settings["file_bytes"]), (resource.RLIMIT_CORE, 0),
                         (resource.RLIMIT_AS, settings["memory_bytes"]), (resource.RLIMIT_CPU, settings["cpu_seconds"])):
        resource.setrlimit(limit, (value, value))
    (sandbox / "kernel.pid").write_text(str(os.getpid()))
    os.chdir(sandbox / "work")
    command = _command(settings, private, kernel_args, sandbox)
    home = Path("/tmp/home") if settings["bwrap"] else sandbox / "run"
    os.execvpe(command[0], command, _environment(settings, home))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main(sys.argv[1:])
