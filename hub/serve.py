"""The class's JupyterHub on 127.0.0.1 (`make hub`): starts it, prints its URL, stops it with everything it started.

    python -m hub.serve [--port 8000] [--class-dir DIR] [--extra-config FILE]

Run as root (the hub starts each user's server as that user), after `python -m hub.roster add`. The hub
listens on --port, or the next free port above it if that one is taken (up to 100 further), and prints its
URL once it answers. Ctrl-C (SIGINT) or SIGTERM stops it: JupyterHub stops every user's server and the proxy
itself, and each kernel ends when it sees its server gone; every process still carrying this run's id
(MINICAM_HUB_ID, which the hub gives the proxy, each server and, through it, each kernel and terminal)
5 s later is ended, first with SIGTERM, then SIGKILL, and the command says what it had to end. --extra-config names a JupyterHub config file loaded after
hub/jupyterhub_config.py (the tests' settings). JupyterHub's log is <class>/hub/jupyterhub.log.
"""
from __future__ import annotations

import argparse
import http.client
import os
import secrets
import signal
import shutil
import socket
import stat
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

from hub.layout import ClassDir, ClassError

HERE = Path(__file__).resolve().parent
PROXY = HERE / "node_modules" / ".bin" / "configurable-http-proxy"
PORT_TRIES = 100


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        # As the proxy binds (Node sets SO_REUSEADDR): a port whose last connections linger in TIME_WAIT is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def first_free_port(start: int) -> int:
    for port in range(start, min(start + PORT_TRIES, 65536)):
        if port_is_free(port):
            return port
    raise ClassError(f"no free port from {start} to {start + PORT_TRIES - 1} on 127.0.0.1: give --port elsewhere")


def any_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reachable_by_others(path: Path) -> bool:
    """Whether a user other than the owner can run the file at `path`: it and every folder above it have x for others."""
    real = Path(os.path.realpath(path))
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in [real, *real.parents])


def users_python(class_dir: ClassDir) -> Path:
    """A Python the class's users can run, with this environment's packages.

    This one, where its interpreter is reachable by every user (a venv made from a system Python, or one under
    /opt or /srv). Where it is not (a Python built into root's home, as pyenv does: /root is 0700), the users
    could not start a server at all; then <class>/env is made: a venv of the system's Python of the same version
    (e.g. /usr/bin/python3.11), with no package of its own and one .pth file that adds this environment's
    site-packages (read-only for the users, as they are) through site.addsitedir, so its .pth files (the editable
    minicam) apply too. Compiled packages carry over: same major.minor version, same ABI."""
    packages = Path(sysconfig.get_paths()["purelib"])
    checkout = Path(__file__).resolve().parents[1]
    closed = [str(p) for p in (packages, checkout) if not reachable_by_others(p)]
    if closed:
        raise ClassError(f"the users' servers need this environment's packages and minicam, but {', '.join(closed)} "
                         "lies in a folder other users cannot enter (e.g. made by mktemp -d, or a 0700 home): install "
                         "the checkout where the class can read it (e.g. under /srv or /opt), or give the folders "
                         "above it o+x")
    if reachable_by_others(Path(sys.executable)):
        return Path(sys.executable)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(f"python{version}", path="/usr/local/bin:/usr/bin:/bin")
    if not system or not reachable_by_others(Path(system)):
        raise ClassError(f"{sys.executable} is in a folder other users cannot enter, and there is no python{version} "
                         f"they can run in /usr/bin: install python{version} (apt-get install python{version}-venv) "
                         "or make the venv from a Python outside root's home")
    env = class_dir.root / "env"
    mark = f"{system}\n{packages}\n"
    if not (env / ".minicam-env").is_file() or (env / ".minicam-env").read_text() != mark:
        shutil.rmtree(env, ignore_errors=True)
        made = subprocess.run([system, "-m", "venv", "--without-pip", str(env)], capture_output=True, text=True)
        if made.returncode:
            raise ClassError(f"{system} -m venv {env} failed: {made.stderr.strip()} (apt-get install python{version}-venv)")
        [site] = (env / "lib").glob("python*/site-packages")
        (site / "minicam-hub.pth").write_text(f"import site; site.addsitedir({str(packages)!r})\n")
        (env / ".minicam-env").write_text(mark)
    return env / "bin" / "python"


def processes_of(run_id: str) -> list[int]:
    """The pids of every process whose environment has MINICAM_HUB_ID=run_id (root reads every /proc/PID/environ)."""
    mark, found = f"MINICAM_HUB_ID={run_id}".encode(), []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as f:
                    if mark in f.read().split(b"\0"):
                        found.append(int(entry.name))
            except OSError:
                pass   # gone meanwhile, or a kernel thread
    return found


def describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f"{pid} ({f.read().replace(bytes(1), b' ').decode(errors='replace').strip()[:120]})"
    except OSError:
        return f"{pid} (gone)"


def end_all(run_id: str, grace: float = 5, wait: float = 5) -> list[str]:
    """After `grace` seconds for the run's processes to end by themselves (a kernel ends within a second or two of
    its server: ipykernel polls its parent), SIGTERM, then SIGKILL, to every one still there; returns those
    (pid and command)."""
    until = time.monotonic() + grace
    while processes_of(run_id) and time.monotonic() < until:
        time.sleep(0.2)
    left = processes_of(run_id)
    named = [describe(pid) for pid in left]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in left:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        until = time.monotonic() + wait
        while processes_of(run_id) and time.monotonic() < until:
            time.sleep(0.1)
        if not processes_of(run_id):
            break
    return named


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hub.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="the first port tried (default 8000)")
    parser.add_argument("--class-dir", type=Path, help="the class folder (default $MINICAM_CLASS or /srv/minicam)")
    parser.add_argument("--extra-config", type=Path, help="a JupyterHub config file loaded after the project's")
    args = parser.parse_args(argv)
    class_dir = ClassDir(args.class_dir)
    try:
        if os.geteuid() != 0:
            raise ClassError("the hub starts each user's server as that user: run it as root")
        if not 1 <= args.port <= 65535:
            raise ClassError(f"--port {args.port}: a port is 1 to 65535")
        if not PROXY.exists():
            raise ClassError(f"{PROXY} is missing: `make hub` installs it (cd hub && npm ci)")
        if args.extra_config and not args.extra_config.is_file():
            raise ClassError(f"--extra-config {args.extra_config}: no such file")
        class_dir.read()
        port = first_free_port(args.port)
        python = users_python(class_dir)
    except ClassError as err:
        print(f"hub.serve: {err}", file=sys.stderr)
        sys.exit(2)
    run_id = secrets.token_hex(8)
    env = {**os.environ, "MINICAM_CLASS": str(class_dir.root), "MINICAM_HUB_PORT": str(port),
           "MINICAM_HUB_API_PORT": str(any_free_port()), "MINICAM_PROXY_API_PORT": str(any_free_port()),
           "MINICAM_HUB_ID": run_id, "MINICAM_USER_PYTHON": str(python), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    if args.extra_config:
        env["MINICAM_HUB_EXTRA_CONFIG"] = str(args.extra_config.resolve())
    log = open(class_dir.hub / "jupyterhub.log", "a")
    # In a session of its own, so that a Ctrl-C in the terminal reaches this process only, which stops the hub
    # in order (JupyterHub first, which stops the servers and the proxy, then whatever is left).
    hub = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(HERE / "jupyterhub_config.py")],
                           cwd=class_dir.hub, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.append(signum))
    url = f"http://127.0.0.1:{port}/"
    announced = False
    while not stop and hub.poll() is None:
        if not announced:
            try:
                urllib.request.urlopen(f"{url}hub/api", timeout=1)
                print(f"The class's hub is at {url} (log: {class_dir.hub / 'jupyterhub.log'}; Ctrl-C stops it)",
                      flush=True)
                announced = True
            except (OSError, http.client.HTTPException):
                pass       # not up yet (a half-started server may also answer with a broken status line)
        time.sleep(0.2)
    if hub.poll() is None:
        hub.send_signal(signal.SIGTERM)
        try:
            hub.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(hub.pid, signal.SIGKILL)
            hub.wait()
    left = end_all(run_id)
    log.close()
    if left:
        print(f"hub.serve: ended {len(left)} processes the hub had left: {'; '.join(left)}",
              file=sys.stderr)
    if not stop:
        print(f"hub.serve: JupyterHub exited by itself (status {hub.returncode}); its log: "
              f"{class_dir.hub / 'jupyterhub.log'}", file=sys.stderr)
        sys.exit(1)
    print("The hub has stopped; nothing of it is left running.")


if __name__ == "__main__":
    main()
