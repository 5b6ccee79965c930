"""Every laptop the README promises gets the pinned set: Linux x86-64 and aarch64, macOS 14+ on Apple silicon and
Windows amd64, at the oldest and the newest Python the README states.

The lock (constraints.txt) is universal: one version per package, with a platform marker on what is
platform-specific. The static tests read it with `packaging`'s marker evaluation; the resolution test asks the
package registry, with uv, whether every platform and Python gets a wheel of every pin it installs and whether
resolving pyproject.toml's requirements with all extras there lands exactly on those pins. Without uv or
without the registry it skips and says why.
"""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("setup_env", ROOT / "tools" / "setup_env.py")
setup_env = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(setup_env)

OLDEST, NEWEST = setup_env.OLDEST, setup_env.NEWEST
PYTHONS = ["%d.%d" % OLDEST, "%d.%d" % NEWEST]
# name -> (uv's --python-platform, the marker environment such a machine has, extra environment for uv).
# torch 2.14.1's wheels: manylinux_2_28 (x86_64, aarch64), macosx_14_0_arm64, win_amd64.
PLATFORMS = {
    "linux-x86_64": ("x86_64-manylinux_2_28",
                     dict(sys_platform="linux", platform_system="Linux", platform_machine="x86_64", os_name="posix"),
                     {}),
    "linux-aarch64": ("aarch64-manylinux_2_28",
                      dict(sys_platform="linux", platform_system="Linux", platform_machine="aarch64", os_name="posix"),
                      {}),
    "macos-arm64": ("aarch64-apple-darwin",
                    dict(sys_platform="darwin", platform_system="Darwin", platform_machine="arm64", os_name="posix"),
                    {"MACOSX_DEPLOYMENT_TARGET": "14.0"}),
    "windows-amd64": ("x86_64-pc-windows-msvc",
                      dict(sys_platform="win32", platform_system="Windows", platform_machine="AMD64", os_name="nt"),
                      {}),
}
CUDA = re.compile(r"^(cuda-|nvidia-|triton$)")
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge's name -> PyPI's name


def marker_env(platform, python):
    return dict(PLATFORMS[platform][1], implementation_name="cpython", platform_python_implementation="CPython",
                python_version=python, python_full_version=python + ".0")


def lock():
    """constraints.txt as a list of Requirements."""
    return [Requirement(line) for line in setup_env.requirement_lines(setup_env.LOCK)]


def pins(requirements):
    """{canonical name: version} of exact pins."""
    out = {}
    for r in requirements:
        (spec,) = r.specifier
        assert spec.operator == "==", f"the lock must pin exact versions, not {r}"
        out[canonicalize_name(r.name)] = spec.version
    return out


def installed_on(platform, python):
    """The pins a `pip install -r constraints.txt` there installs: those whose marker holds."""
    env = marker_env(platform, python)
    return pins(r for r in lock() if r.marker is None or r.marker.evaluate(env))


def test_the_lock_pins_every_package_once_with_markers_that_parse():
    requirements = lock()
    names = [canonicalize_name(r.name) for r in requirements]
    assert len(names) == len(set(names)), "the lock pins a package twice"
    pins(requirements)
    assert {"torch", "torchvision", "pip", "uv"} <= set(names)


@pytest.mark.parametrize("platform", ["macos-arm64", "windows-amd64"])
def test_the_cuda_wheels_are_installed_only_on_linux(platform):
    for python in PYTHONS:
        cuda = sorted(name for name in installed_on(platform, python) if CUDA.match(name))
        assert not cuda, f"{platform}, Python {python} would install Linux's CUDA wheels: {cuda}"
    linux = installed_on("linux-x86_64", PYTHONS[0])
    # torch's own metadata asks for them on Linux: the lock keeps them there
    assert {"triton", "cuda-bindings", "nvidia-cudnn-cu13", "nvidia-nccl-cu13"} <= set(linux)


def test_the_two_halves_of_the_set_up_are_the_whole_lock():
    heavy, rest = setup_env.split_lock(setup_env.LOCK)
    lines = setup_env.requirement_lines(setup_env.LOCK)
    pip = [line for line in lines if line.startswith("pip==")]
    assert len(pip) == 1 and sorted(heavy + rest + pip) == sorted(lines)
    heavy_names = {canonicalize_name(Requirement(line).name) for line in heavy}
    assert "torch" in heavy_names and "torchvision" not in heavy_names
    assert {name for name in pins(lock()) if CUDA.match(name)} <= heavy_names


def test_the_python_range_is_stated_the_same_everywhere():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=%d.%d,<%d.%d" % (OLDEST + (NEWEST[0], NEWEST[1] + 1))
    versions = [c.rpartition(":: ")[2] for c in project["classifiers"]
                if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    assert versions == ["3.%d" % minor for minor in range(OLDEST[1], NEWEST[1] + 1)]
    assert "Python %s to %s" % tuple(PYTHONS) in (ROOT / "README.md").read_text()
    assert "tools/setup_env.py" in (ROOT / "Makefile").read_text()


def _environment_yml():
    yaml = pytest.importorskip("yaml")
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    packages = {}
    for dep in env["dependencies"]:
        for item in dep["pip"] if isinstance(dep, dict) else [dep]:
            if not item.startswith("-e"):
                name, _, version = re.sub(r"==?", "=", item, count=1).partition("=")
                packages[canonicalize_name(CONDA_NAMES.get(name, name))] = version
    return packages


def test_environment_yml_pins_the_lock_and_nothing_platform_specific():
    packages = _environment_yml()
    python = tuple(int(p) for p in packages.pop("python").split("."))
    assert OLDEST <= python[:2] <= NEWEST, (
        f"environment.yml's python={python} is outside the supported range {PYTHONS}")
    by_name = {canonicalize_name(r.name): r for r in lock()}
    for name, version in packages.items():
        if name == "pip" and not version:
            continue
        assert name in by_name, f"environment.yml pins {name}, which the lock does not"
        assert by_name[name].marker is None, f"environment.yml pins {name}, which only {by_name[name].marker} installs"
        assert version == str(by_name[name].specifier).removeprefix("=="), (
            f"environment.yml has {name} {version}, constraints.txt {by_name[name].specifier}")


def test_the_set_up_refuses_a_python_outside_the_range_before_making_anything(tmp_path):
    venv = tmp_path / "venv"
    code = ("import importlib.util, sys; s = importlib.util.spec_from_file_location('s', sys.argv[1]); "
            "m = importlib.util.module_from_spec(s); s.loader.exec_module(m); m.OLDEST = (3, 99); "
            "m.main(['--venv', sys.argv[2], '--rerun', 'make lab PYTHON=python3.12'])")
    run = subprocess.run([sys.executable, "-c", code, str(ROOT / "tools" / "setup_env.py"), str(venv)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and run.stdout == ""
    assert "minicam needs Python 3.99 to" in run.stderr
    assert "Install one and run: make lab PYTHON=python3.12" in run.stderr
    assert "Traceback" not in run.stderr and not venv.exists()


def test_the_lock_is_rewritten_only_from_an_environment(tmp_path):
    before = setup_env.LOCK.read_bytes()
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "setup_env.py"), "--lock", "--venv", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "there is no environment there" in run.stderr and "Traceback" not in run.stderr
    assert setup_env.LOCK.read_bytes() == before


# --- the registry: uv resolves the lock for each platform ----------------------------------------------------------

UNREACHABLE = ("Failed to fetch", "error sending request", "are you offline", "dns error", "tcp connect error",
               "Connection refused", "timed out", "Network is unreachable")


def _uv():
    try:
        import uv
        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def _compile(uv, inputs, out, *options, platform=None, python=None):
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never")
    command = [uv, "pip", "compile", *inputs, "--python", sys.executable, "--no-header", "--no-annotate", "--quiet",
               "--output-file", str(out), *options]
    if platform:
        target, _, extra_env = PLATFORMS[platform]
        env.update(extra_env)
        command += ["--python-platform", target, "--python-version", python, "--only-binary", ":all:"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    if run.returncode and "--offline" in options and "network was disabled" in run.stderr:
        # the platform's own wheel's metadata was not among what the universal resolution fetched: ask for it
        command.remove("--offline")
        run = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    return run, ([Requirement(line) for line in setup_env.requirement_lines(out)] if run.returncode == 0 else None)


def test_every_platform_and_python_gets_a_wheel_of_every_pin_and_resolves_onto_the_pins(tmp_path):
    """First the lock's own resolution, online: pyproject.toml's requirements with all extras, for every platform
    at once (`uv pip compile --universal`, what `make constraints` runs) under the lock as constraints, gives the
    lock, line for line. It brings the registry's current index of every package into uv's cache. Then, from that
    index (--offline, going online only for what it lacks), per platform and Python, two resolutions: the lock
    itself with --no-deps (what the set-up's `pip install --no-deps -r` does there), and the requirements with all
    extras under the lock: both must give exactly the pins whose markers hold there, each with a wheel
    (--only-binary: a student's laptop builds nothing)."""
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not installed here (the test extra pins it): cannot resolve the lock for other platforms")
    (tmp_path / "pip.in").write_text("pip\n")
    requirements = ["pyproject.toml", str(tmp_path / "pip.in"), "--all-extras"]
    run, universal = _compile(uv, requirements, tmp_path / "universal.txt", "--universal", "--python-version",
                              PYTHONS[0], "--constraint", str(setup_env.LOCK))
    if run.returncode and any(s in run.stderr for s in UNREACHABLE):
        pytest.skip("the package registry is unreachable, so the lock cannot be resolved for other platforms: "
                    + run.stderr.strip().splitlines()[-1].strip())
    failures = []
    if run.returncode:
        failures.append(f"the universal resolution under the lock failed:\n{run.stderr.strip()}")
    elif sorted(map(str, universal)) != sorted(map(str, lock())):
        failures.append("constraints.txt is not the universal resolution of pyproject.toml's requirements under its "
                        "own pins: " + ", ".join(sorted(set(map(str, universal)) ^ set(map(str, lock()))))
                        + " (run make constraints)")

    jobs = {}
    for platform in PLATFORMS:
        for python in PYTHONS:
            name = f"{platform}-{python}"
            where = dict(platform=platform, python=python)
            jobs[name, "--no-deps"] = ([str(setup_env.LOCK)], tmp_path / f"{name}-lock.txt", "--no-deps", "--offline"),\
                where
            jobs[name, "with extras"] = (requirements, tmp_path / f"{name}-full.txt", "--constraint",
                                         str(setup_env.LOCK), "--offline"), where
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(jobs, pool.map(lambda job: _compile(uv, *job[0], **job[1]), jobs.values())))
    for (name, kind), (run, resolved) in results.items():
        platform, python = name.rsplit("-", 1)
        if run.returncode:
            failures.append(f"{name} ({kind}): uv failed:\n{run.stderr.strip()}")
            continue
        resolved, expected = pins(resolved), installed_on(platform, python)
        if resolved != expected:
            outside = {n: v for n, v in resolved.items() if expected.get(n) != v}
            missing = sorted(set(expected) - set(resolved))
            failures.append(f"{name} ({kind}): resolved outside the pins {outside}, pins not resolved {missing}")
    assert not failures, "\n".join(failures)
