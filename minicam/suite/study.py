"""How long a notebook takes to study, from its measured length, and the line each notebook states it in.

    python -m minicam.suite.study notebooks/*.ipynb            # print each notebook's estimate
    python -m minicam.suite.study --write notebooks/*.ipynb    # put it in each notebook's title cell
    python -m minicam.suite.study --check notebooks/*.ipynb    # exit 1 where the stated time is not the estimate

The estimate (what the title cell's "Study time" line says, and how):

- prose: the markdown cells' words read at 80 words a minute (a careful first reading of technical text
  with equations; a word is a run of non-space characters, a Korean, Japanese or Chinese summary counts
  as its few space-separated runs, since a reader reads one of the three);
- code: one minute per code cell that is not an exercise (read it, run it, read its output);
- exercises: ten minutes per point (the exercises' points are their nbgrader ``points``);

rounded to the nearest five minutes. Only the markdown and the code change the estimate, never the outputs,
so ``--write`` needs no re-execution. Speaker notes and slide-only cells (tagged ``slides-only``) do not count.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..apps._common import write_atomic

__all__ = ["estimate", "stated", "line", "main", "WORDS_PER_MINUTE", "MINUTES_PER_CODE_CELL", "MINUTES_PER_POINT"]

WORDS_PER_MINUTE = 80
MINUTES_PER_CODE_CELL = 1
MINUTES_PER_POINT = 10
SLIDES_ONLY = "slides-only"
# the line in the title cell: "*Study time: about 1 h 35 min* (how: `minicam.suite.study`)."
STATED = re.compile(r"^\*Study time: about (?:(?P<h>\d+) h)? ?(?:(?P<m>\d+) min)?\*.*$", re.M)


def _cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if SLIDES_ONLY not in c.get("metadata", {}).get("tags", [])
            and c.get("metadata", {}).get("slideshow", {}).get("slide_type") != "notes"]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _notebook(nb) -> dict:
    """nb as a notebook dict: a dict with a list of cells, or the path of an .ipynb file."""
    if isinstance(nb, (str, Path)):
        path = Path(nb)
        if path.suffix != ".ipynb" or not path.is_file():
            raise ValueError(f"nb must be a notebook: a dict with 'cells' or the path of an .ipynb file, got {str(nb)!r}")
        nb = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError(f"nb must be a notebook: a dict with 'cells' or the path of an .ipynb file, got {type(nb).__name__}")
    return nb


def counts(nb: dict) -> dict:
    """The measured length: prose words, code cells outside the exercises, exercise points."""
    cells = _cells(nb)
    words = sum(len(_source(c).split()) for c in cells if c["cell_type"] == "markdown")
    points = sum(c.get("metadata", {}).get("nbgrader", {}).get("points", 0) or 0 for c in cells)
    code = sum(1 for c in cells if c["cell_type"] == "code" and "nbgrader" not in c.get("metadata", {}))
    return {"words": words, "code cells": code, "points": points}


def estimate(nb: dict | str | Path) -> int:
    """Study time in minutes, rounded to five (see the module's docstring for the rule)."""
    n = counts(_notebook(nb))
    minutes = n["words"] / WORDS_PER_MINUTE + n["code cells"] * MINUTES_PER_CODE_CELL + n["points"] * MINUTES_PER_POINT
    return max(5, 5 * round(minutes / 5))


def _format(minutes: int) -> str:
    h, m = divmod(minutes, 60)
    return " ".join(([f"{h} h"] if h else []) + ([f"{m} min"] if m or not h else []))


def line(minutes: int) -> str:
    """The title cell's line for a study time of `minutes` (a positive int)."""
    if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes < 1:
        raise ValueError(f"minutes must be a positive int, got {minutes!r}")
    return (f"*Study time: about {_format(minutes)}* (estimated from this notebook's length by "
            f"`minicam.suite.study`: prose at {WORDS_PER_MINUTE} words a minute, {MINUTES_PER_CODE_CELL} minute a "
            f"code cell, {MINUTES_PER_POINT} minutes an exercise point).")


def stated(nb: dict) -> int | None:
    """The study time the title cell states, in minutes (None when it states none)."""
    nb = _notebook(nb)
    match = STATED.search(_source(nb["cells"][0])) if nb["cells"] else None
    if not match or not (match["h"] or match["m"]):
        return None
    return 60 * int(match["h"] or 0) + int(match["m"] or 0)


def _write(path: Path, nb: dict) -> bool:
    title = _source(nb["cells"][0])
    new = line(estimate(nb))
    text = STATED.sub(new, title, count=1) if STATED.search(title) else title.rstrip("\n") + "\n\n" + new
    if text == title:
        return False
    nb["cells"][0]["source"] = text
    text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    write_atomic(path, lambda f: f.write(text.encode("utf-8")))
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minicam.suite.study", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write the estimate into each title cell")
    mode.add_argument("--check", action="store_true", help="exit 1 where the stated time differs from the estimate")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.notebooks if not p.is_file() or p.suffix != ".ipynb"]
    if missing:
        parser.error(f"notebooks must be .ipynb files: {', '.join(missing)} is not one")
    wrong = 0
    for path in args.notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        minutes, says = estimate(nb), stated(nb)
        n = counts(nb)
        print(f"{path.name}: {_format(minutes)} ({n['words']} words, {n['code cells']} code cells, "
              f"{n['points']} points); states {_format(says) if says else 'nothing'}")
        if args.write:
            _write(path, nb)
        elif args.check and says != minutes:
            wrong += 1
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
