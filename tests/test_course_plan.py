"""The course plan (book/course_plan.md, written by course.plan) is what the notebooks give now, and puts every
notebook in exactly one week of each plan."""
import re
import warnings

from course import plan


def test_the_plan_page_is_up_to_date():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = plan.render()
    assert plan.PAGE.read_text(encoding="utf-8") == text, "book/course_plan.md is stale: python -m course.plan --write"


def test_every_notebook_is_in_one_week_of_each_plan():
    names = [p.stem for p in plan._notebooks()]
    page = plan.PAGE.read_text(encoding="utf-8")
    twelve, six = page.split("## 12 weeks")[1].split("## 6 weeks")
    six = six.split("## Grading")[0]
    for name in names:
        rows12 = [r for r in twelve.splitlines() if r.startswith("|") and f"`{name}` (" in r]
        rows6 = [r for r in six.splitlines() if r.startswith("|") and f"`{name}`" in r]
        assert len(rows12) == 1 and len(rows6) == 1, f"{name}: in {len(rows12)} of the 12 weeks, {len(rows6)} of the 6"
    weeks = [int(m) for m in re.findall(r"^\| (\d+) \|", twelve, re.M)]
    assert weeks == list(range(1, 13))


def test_a_notebook_no_week_takes_is_refused(monkeypatch, tmp_path):
    (tmp_path / "99_new.ipynb").write_text("{}")
    monkeypatch.setattr(plan, "NOTEBOOKS", tmp_path)
    try:
        plan.render()
    except SystemExit as err:
        assert "99_new.ipynb" in str(err)
    else:
        raise AssertionError("a notebook in no week was accepted")
