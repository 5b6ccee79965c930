"""How long each notebook takes to execute top to bottom in a fresh kernel (nothing is written back).

    python benchmarks/notebook_times.py [notebooks/NAME.ipynb ...] [--jobs 2]

Prints one line per notebook (seconds of wall time, kernel start included) and the total, so that the
README's budget (each notebook <= 25 s, all of them <= 150 s under nbval) can be checked on any machine.
Times vary with the machine and its load: compare them, don't test them.
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def execute(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: every notebook in notebooks/)")
    parser.add_argument("--jobs", type=int, default=1, choices=(1, 2), help="notebooks at a time (default 1)")
    args = parser.parse_args(argv)
    paths = args.paths or sorted((ROOT / "notebooks").glob("*.ipynb"))
    start = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        for path, seconds in zip(paths, pool.map(execute, paths)):
            print(f"{path.name:<28} {seconds:6.1f} s")
    print(f"{'all (wall)':<28} {time.perf_counter() - start:6.1f} s")


if __name__ == "__main__":
    main()
