"""The course plan: the suite mapped onto the weeks of a term, written as a page of the book.

    python -m course.plan            # print the plan (Markdown)
    python -m course.plan --write    # write book/course_plan.md (the book's "Course plan" page)
    python -m course.plan --check    # exit 1 when book/course_plan.md is not what the notebooks give now

The weeks are fixed here (which notebooks, which explorer demonstration); everything measured comes from the
notebooks themselves, so a split, a new exercise or a longer section moves the plan when it is rewritten:
each notebook's title (its first heading), its study time (`minicam.suite.study`'s estimate, which the notebook
states at its top), its exercises and their points (`course.exercises`: the homework). A week takes every
notebook whose name starts with one of its numbers ("05" takes 05_... and 05b_...), so no notebook is left out
(tests/test_course_plan.py checks that each is in exactly one week of each plan).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from course.exercises import exercises
from minicam.apps._common import write_atomic
from minicam.suite import study

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PAGE = ROOT / "book" / "course_plan.md"
LECTURE_MINUTES = 90      # one lecture a week: two 45-minute halves

OBJECTIVES = [
    "derive saliency maps, class model visualisation, CAM, Grad-CAM, Guided Grad-CAM, Grad-CAM++, LRP and "
    "Relevance-CAM from the lecture documents' equations, and compute each by hand on a small example;",
    "implement each method in a few lines of PyTorch and check it against automatic differentiation;",
    "say what each method needs of a network (global average pooling, a target layer, relevance rules) and what "
    "breaks without it;",
    "score explanations (Average Drop, % Increase in Confidence, Win %, the pointing game, box IoU, deletion and "
    "insertion, sanity checks) and decide a comparison with a paired bootstrap interval rather than one number;",
    "use an explanation to find a bias a model learned, and explain your own model and images.",
]
PREREQUISITES = [
    "Python and NumPy or PyTorch tensors (indexing, broadcasting);",
    "the chain rule and partial derivatives; matrix products;",
    "what a convolutional network is (convolution, ReLU, pooling, a linear classifier, softmax) and how it is "
    "trained by gradient descent — at the level of an introductory deep learning course.",
]
# (week, theme, notebook numbers, the explorer demonstration for the lecture)
WEEKS = [
    (1, "Introduction: one notation, shapes world, comparing two methods", ["00"],
     "the explorer on shapes_vgg: one image, Grad-CAM at relu6, each class in turn"),
    (2, "Gradients: saliency maps and class model visualisation", ["01"],
     "Saliency against Grad-CAM on the same image"),
    (3, "CAM and its prerequisite", ["02"], "CAM on shapes_vgg and shapes_resnet, layer by layer"),
    (4, "Grad-CAM, and a bias found with it", ["03"], "shapes_vgg_biased: where it looks, with and without the cue"),
    (5, "Guided Grad-CAM", ["04"], "Guided backpropagation against Guided Grad-CAM"),
    (6, "Grad-CAM++", ["05"], "Grad-CAM++ against Grad-CAM on an image with two objects of one class"),
    (7, "Layer-wise relevance propagation", ["06"], "LRP on shapes_vgg, each class"),
    (8, "Relevance-CAM and depth", ["07"], "Relevance-CAM against Grad-CAM from relu6 down to relu1"),
    (9, "Scoring explanations", ["08"], "the same image under each method, then its Average Drop"),
    (10, "Sanity checks", ["08b"], "shapes_vgg_shuffled against shapes_vgg"),
    (11, "The explorer; your own model", ["09", "11"], "every method, every model: students choose"),
    (12, "Summary and review", ["10", "A"], "review: the claims the suite decided, in the explorer"),
]
SHORT = [(1, [1, 2]), (2, [3, 4]), (3, [5, 6]), (4, [7, 8]), (5, [9, 10]), (6, [11, 12])]   # 6 weeks: two a week


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def _week_of(stem: str) -> int | None:
    """The week whose longest number begins the notebook's name ("08b_..." is 08b's week, "08a_..." is 08's)."""
    best = None
    for week, _, numbers, _ in WEEKS:
        for n in numbers:
            pattern = rf"{n}[0-9]" if n.isalpha() else rf"{re.escape(n)}(?![0-9])"   # "A": the appendices A1, A2, ...
            if re.match(pattern, stem) and (best is None or len(n) > best[0]):
                best = (len(n), week)
    return best and best[1]


def _week_notebooks(numbers: list[str], paths: list[Path]) -> list[Path]:
    weeks = {w for w, _, ns, _ in WEEKS if ns == numbers}
    return [p for p in paths if _week_of(p.stem) in weeks]


def _title(nb) -> str:
    first = nb.cells[0].source.splitlines()[0] if nb.cells else ""
    return re.sub(r"^#+\s*", "", first).strip()


def _hm(minutes: int) -> str:
    h, m = divmod(minutes, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"


def _n(k: int, word: str) -> str:
    return f"{k} {word}{'' if k == 1 else 's'}"


def _facts(path: Path) -> dict:
    nb = nbformat.read(path, as_version=4)
    found = exercises(nb)
    return {"title": _title(nb), "minutes": study.estimate(nb), "exercises": len(found),
            "points": sum(ex.points for ex in found)}


def render() -> str:
    paths = _notebooks()
    lost = [p.name for p in paths if _week_of(p.stem) is None]
    if lost:
        raise SystemExit(f"course/plan.py's WEEKS place no week for {', '.join(lost)}: add its number to a week")
    facts = {p.stem: _facts(p) for p in paths}
    out = ["# Course plan", "",
           "A term of the suite: what the course teaches, what it assumes, and a 12-week and a 6-week plan. Each "
           "week names its notebooks (read before or after the lecture), the slide decks the lecture uses (one per "
           "notebook, `make slides`), the explorer demonstration for the lecture hall (`make explorer`) and the "
           "homework: the notebooks' exercises, with their points, graded by `make grade` or on the course hub. "
           "The study times are the notebooks' own estimates (stated at the top of each; `minicam.suite.study` "
           "says how they are measured: prose at 80 words a minute, a minute a code cell, ten minutes an exercise "
           f"point). A lecture is {LECTURE_MINUTES} minutes. This page is written by `python -m course.plan --write` "
           "from the notebooks as they are.", "",
           "## Learning objectives", "", "After the course a student can:", ""]
    out += [f"{i}. {o}" for i, o in enumerate(OBJECTIVES, 1)]
    out += ["", "## Prerequisites", ""] + [f"- {p}" for p in PREREQUISITES]
    out += ["", "## 12 weeks", "",
            "| week | theme | notebooks (study time) | explorer demo | homework | study time |",
            "|---:|---|---|---|---|---:|"]
    week_minutes, total_points = {}, 0
    for week, theme, numbers, demo in WEEKS:
        names = [p.stem for p in _week_notebooks(numbers, paths)]
        minutes = sum(facts[n]["minutes"] for n in names)
        points = sum(facts[n]["points"] for n in names)
        week_minutes[week], total_points = (minutes, points), total_points + points
        books = "<br>".join(f"`{n}` ({_hm(facts[n]['minutes'])})" for n in names)
        homework = "<br>".join(f"`{n}`: {_n(facts[n]['exercises'], 'exercise')}, {_n(facts[n]['points'], 'point')}"
                               + (" (optional)" if n.startswith("A") else "") for n in names if facts[n]["exercises"])
        out.append(f"| {week} | {theme} | {books} | {demo} | {homework or '—'} | {_hm(minutes)} |")
    all_minutes = sum(m for m, _ in week_minutes.values())
    out += ["", f"In all: {len(paths)} notebooks, {_hm(all_minutes)} of study, {total_points} points of homework, "
            f"and {len(WEEKS)} lectures of {LECTURE_MINUTES} minutes.", "",
            "## 6 weeks", "", "Two weeks of the 12-week plan a week (two lectures a week, or one of three hours).", "",
            "| week | the 12-week plan's weeks | notebooks | homework points | study time |", "|---:|---|---|---:|---:|"]
    for week, pair in SHORT:
        names = [p.stem for w in pair for p in _week_notebooks(WEEKS[w - 1][2], paths)]
        minutes = sum(week_minutes[w][0] for w in pair)
        points = sum(week_minutes[w][1] for w in pair)
        out.append(f"| {week} | {', '.join(str(w) for w in pair)} | {', '.join(f'`{n}`' for n in names)} | "
                   f"{points} | {_hm(minutes)} |")
    out += ["", "## Grading", "",
            "Every exercise is graded automatically (a hidden test per exercise; feedback without the answer key). "
            "A course that wants a grade per week counts each week's homework points; the appendices (`A…`) are "
            "for reading and carry their own small exercises. The README's \"Course edition\" and \"A class on "
            "JupyterHub\" sections say how to hand the notebooks out, collect and grade them.", ""]
    return "\n".join(out)


def _write(text: str) -> None:
    write_atomic(PAGE, lambda f: f.write(text.encode("utf-8")))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.plan", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"write {PAGE.relative_to(ROOT)}")
    mode.add_argument("--check", action="store_true", help=f"exit 1 when {PAGE.relative_to(ROOT)} is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        _write(text)
        print(f"wrote {PAGE}")
    elif args.check:
        if not PAGE.exists() or PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE} is not what the notebooks give now: python -m course.plan --write", file=sys.stderr)
            return 1
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
