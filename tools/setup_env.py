#!/usr/bin/env python3
"""minicam's set-up, on every operating system: `make install` runs it, and so can you, without make.

    python3 tools/setup_env.py                 # make .venv/ in this checkout (Windows: py tools\\setup_env.py)
    python3 tools/setup_env.py --venv DIR      # ... or another folder
    python3 tools/setup_env.py --lock          # rewrite constraints.txt from .venv/ (what `make constraints` does)

The set-up makes a virtual environment with the Python that runs this script and installs into it exactly
the versions of constraints.txt, then minicam from this checkout (editable), then proves the set consistent
with `pip check`. constraints.txt pins every package for every platform; a line with a marker (the CUDA
wheels: `; sys_platform == 'linux'`) is installed only where its marker holds, and pip evaluates it. The
lock holds every package the set-up installs, so it installs two disjoint halves side by side with
--no-deps: torch and its CUDA wheels (mostly unpacking) beside everything else (mostly compiling to
bytecode): half the time of one pip run. torch's modules are compiled to bytecode after its unpacking (like
pip, compileall skips the few files of torch's test helpers written for newer Pythons).

--lock resolves pyproject.toml's requirements and all its extras for every platform and every supported
Python at once (`uv pip compile --universal`, with the uv that the test extra installs), holding every
package to the version installed in the venv: the versions that stored the notebooks' outputs. Packages the
venv's platform does not install (appnope on macOS, pywinpty on Windows) keep the versions the lock had.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "constraints.txt"
# The Pythons every pin has a wheel for on every platform (torch 2.14.1: cp310 to cp314), from the lowest
# version that every pin accepts (tests/test_platforms.py resolves the lock at both ends).
OLDEST, NEWEST = (3, 11), (3, 14)
HEAVY = re.compile(r"^(torch|triton|nvidia-[^=;\s]*|cuda-[^=;\s]*)\s*==", re.IGNORECASE)
LOCK_HEADER = """\
# The exact versions that stored the notebooks' outputs, for every platform: a universal lock of
# pyproject.toml's requirements with all extras, for Python {oldest} to {newest} (uv pip compile --universal).
# A line with a marker is installed only where its marker holds (pip evaluates it).
# 'make constraints' (python tools/setup_env.py --lock) rewrites this file from the versions in .venv/.
"""


def _version(v):
    return "%d.%d" % v


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def check_python(rerun):
    here = sys.version_info[:2]
    if not OLDEST <= here <= NEWEST:
        fail("minicam needs Python %s to %s (its pinned packages have wheels for those); '%s' is Python %s.\n"
             "Install one and run: %s" % (_version(OLDEST), _version(NEWEST), sys.executable,
                                            sys.version.split()[0], rerun))
    try:
        import ensurepip  # noqa: F401  (Debian's python3 has venv without ensurepip)
        import venv  # noqa: F401
    except ImportError:
        fail("'%s -m venv' is not available here, and the set-up needs it to make its virtual environment.\n"
             "Debian/Ubuntu: apt-get install python3-venv (or python%s-venv); Fedora: dnf install python3; "
             "then run it again." % (sys.executable, _version(here)))


def venv_python(venv):
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(command, **kwargs):
    """Run a command, echoed as make would; stop the set-up with its exit status if it fails."""
    print(" ".join(str(c) for c in command), flush=True)
    status = subprocess.call([str(c) for c in command], **kwargs)
    if status:
        fail("the set-up stopped: the command above exited with status %d" % status)


def requirement_lines(lock):
    """The lock's requirement lines, comments and blank lines left out."""
    lines = (line.split("#", 1)[0].strip() for line in lock.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def split_lock(lock):
    """(heavy, rest): torch and its CUDA wheels, and everything else but pip (upgraded first, alone)."""
    heavy, rest = [], []
    for line in requirement_lines(lock):
        if HEAVY.match(line):
            heavy.append(line)
        elif not re.match(r"^pip\s*==", line, re.IGNORECASE):
            rest.append(line)
    return heavy, rest


def install(venv, rerun):
    check_python(rerun)
    run([sys.executable, "-m", "venv", venv])
    python = venv_python(venv)
    pip = [python, "-m", "pip", "install", "--quiet", "--constraint", LOCK]
    run(pip + ["--upgrade", "pip"])
    heavy, rest = split_lock(LOCK)
    for name, lines in (("heavy.txt", heavy), ("rest.txt", rest)):
        (venv / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    commands = [pip + ["--no-deps", "--no-compile", "-r", venv / "heavy.txt"],
                pip + ["--no-deps", "-r", venv / "rest.txt"]]
    for command in commands:
        print(" ".join(str(c) for c in command) + " &", flush=True)
    heavy_run, rest_run = (subprocess.Popen([str(c) for c in command]) for command in commands)
    heavy_status = heavy_run.wait()
    if heavy_status == 0:
        purelib = subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip()
        subprocess.call([str(python), "-m", "compileall", "-q", str(Path(purelib) / "torch")],
                        stdout=subprocess.DEVNULL)
    rest_status = rest_run.wait()
    if heavy_status or rest_status:
        fail("the set-up stopped: installing the pinned packages failed (torch and its CUDA wheels: status %d, "
             "the rest: status %d)" % (heavy_status, rest_status))
    run(pip + ["--no-deps", "-e", ROOT])
    run([python, "-m", "pip", "check"])


def write_lock(venv, lock):
    """Resolve the universal lock, every package held to the venv's version, and replace `lock` whole."""
    python = venv_python(venv)
    if not python.exists():
        fail("--lock reads the versions installed in %s, and there is no environment there: "
             "run the set-up first (make install, or python tools/setup_env.py)" % venv)
    try:
        uv = subprocess.check_output([str(python), "-c", "import uv; print(uv.find_uv_bin())"], text=True,
                                     stderr=subprocess.DEVNULL).strip()
    except subprocess.CalledProcessError:
        fail("--lock needs uv in %s (the test extra pins it): run the set-up again" % venv)
    freeze = subprocess.check_output([str(python), "-m", "pip", "freeze", "--all", "--exclude-editable"], text=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "installed.txt").write_text(freeze, encoding="utf-8")
        # pip is no package's requirement, but the set-up upgrades it first and the lock pins it too.
        (tmp / "pip.in").write_text("pip\n", encoding="utf-8")
        out = lock.with_name("." + lock.name + ".tmp")
        if lock.exists():  # uv prefers the versions of an existing output file: the other platforms' pins stay
            shutil.copyfile(lock, out)
        env = dict(os.environ, UV_PYTHON_DOWNLOADS="never")
        try:
            run([uv, "pip", "compile", ROOT / "pyproject.toml", tmp / "pip.in", "--all-extras", "--universal",
                 "--python-version", _version(OLDEST), "--python", python, "--constraint", tmp / "installed.txt",
                 "--no-header", "--no-annotate", "--quiet", "--output-file", out], env=env)
            body = out.read_text(encoding="utf-8")
            out.write_text(LOCK_HEADER.format(oldest=_version(OLDEST), newest=_version(NEWEST)) + body,
                           encoding="utf-8")
            os.replace(out, lock)
        finally:
            if out.exists():
                out.unlink()


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Make minicam's virtual environment with exactly the versions of constraints.txt, "
                    "or (--lock) rewrite constraints.txt from one.")
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv",
                        help="the virtual environment's folder (default: .venv in this checkout)")
    parser.add_argument("--lock", action="store_true",
                        help="rewrite constraints.txt from the versions installed in the venv (make constraints)")
    parser.add_argument("--rerun", default=None, help=argparse.SUPPRESS)  # the Makefile's advice: its own command
    args = parser.parse_args(argv)
    venv = args.venv.absolute()
    if args.lock:
        write_lock(venv, LOCK)
    else:
        install(venv, args.rerun or "python%s %s" % (_version(NEWEST), " ".join(sys.argv)))


if __name__ == "__main__":
    main()
