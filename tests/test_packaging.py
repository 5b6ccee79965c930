"""The two ways to install name the same packages, and the notebooks are stored as clean runs."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge's name -> PyPI's name


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _project():
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _ranges() -> dict:
    """pyproject's requirements (the package's and every extra's, all of which `make test` installs)."""
    project = _project()
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    return {_name(r): r for r in project["dependencies"] + extras}


def _constraints() -> dict:
    """constraints.txt: name -> pinned version."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt must pin exact versions (name==version), got {line!r}"
            pins[_name(name)] = version.strip()
    return pins


def _environment() -> tuple[dict, dict]:
    """environment.yml: (conda name -> pinned version, pip name -> pinned version), PyPI names."""
    yaml = pytest.importorskip("yaml")
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = {}, {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            assert "-e ." in dep["pip"], "environment.yml must install minicam from the checkout"
            pip |= {_name(r): r.partition("==")[2] for r in dep["pip"] if not r.startswith("-e")}
        else:
            name, _, version = dep.partition("=")
            conda[CONDA_NAMES.get(_name(name), _name(name))] = version.lstrip("=")
    conda.pop("pip")
    return conda, pip


def test_environment_yml_names_the_same_packages_as_pyproject():
    conda, pip = _environment()
    assert set(conda) - {"python"} | set(pip) == set(_ranges())


def test_every_requirement_is_pinned_and_the_pins_satisfy_the_ranges():
    from packaging.requirements import Requirement
    pins = _constraints()
    for name, requirement in _ranges().items():
        assert name in pins, f"{name} is required in pyproject.toml but not pinned in constraints.txt"
        assert Requirement(requirement).specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject's range {requirement!r}")


def test_environment_yml_pins_what_constraints_txt_pins():
    pins = _constraints()
    conda, pip = _environment()
    for name, version in {**conda, **pip}.items():
        if name == "python":
            continue
        assert version == pins[name], (f"environment.yml has {name} {version}, constraints.txt {pins[name]}: "
                                       "run `make constraints` and copy the versions")


def test_python_floor_is_the_same_everywhere():
    conda, _ = _environment()
    assert _project()["requires-python"].startswith(">=3.11,")
    assert conda["python"] == "3.11"
    assert "OLDEST, NEWEST = (3, 11)," in (ROOT / "tools" / "setup_env.py").read_text()


def test_notebooks_are_stored_as_top_to_bottom_runs():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks found"
    for path in notebooks:
        cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        counts = [c.get("execution_count") for c in cells]
        assert counts == list(range(1, len(cells) + 1)), (
            f"{path.name}: execution counts {counts} are not 1..{len(cells)}: "
            "re-run it top to bottom in a fresh kernel (jupyter nbconvert --execute --inplace)")
        for c in cells:
            for out in c.get("outputs", []):
                assert out["output_type"] != "error", f"{path.name}: a stored output is an error"
                assert not (out["output_type"] == "stream" and out["name"] == "stderr"), \
                    f"{path.name}: a cell writes to stderr: {''.join(out['text'])[:200]}"


def test_the_version_is_one_and_every_subpackage_is_installed():
    """0.2.0 (issue 22: names moved or went, see CHANGELOG.md), in pyproject and in minicam.__version__;
    the library, its apps and the suite's helpers are all packaged."""
    import tomllib

    import minicam
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["version"] == minicam.__version__ == "0.2.0"
    packaged = set(project["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "minicam").rglob("__init__.py")}
    assert on_disk | {"minicam.weights"} == packaged
    assert "## 0.2.0" in (ROOT / "CHANGELOG.md").read_text()


def test_the_library_stays_tiny(capsys):
    """Issue 22's numbers, measured by benchmarks/core_size.py: the library proper (minicam/ without
    apps/ and suite/) <= 1,900 lines of code and <= 110 raise statements, every module with __all__,
    and a reader following gradcam reads <= 12 functions and classes and <= 160 lines."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("core_size", ROOT / "benchmarks" / "core_size.py")
    core_size = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core_size)
    ok = core_size.measure(ROOT / "minicam", show_all=False)
    assert ok == 0, capsys.readouterr().out
