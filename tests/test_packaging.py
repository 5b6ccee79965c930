"""The two ways to install name the same packages, and the notebooks are stored as clean runs."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge's name -> PyPI's name


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_names_the_same_packages_as_pyproject():
    tomllib = pytest.importorskip("tomllib")
    yaml = pytest.importorskip("yaml")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = set(), set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip |= {_name(r) for r in dep["pip"] if not r.startswith("-e")}
            assert "-e ." in dep["pip"], "environment.yml must install minicam from the checkout"
        else:
            conda.add(CONDA_NAMES.get(_name(dep), _name(dep)))
    conda -= {"python", "pip"}
    assert conda | pip == wanted


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
