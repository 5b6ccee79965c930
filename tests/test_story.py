"""The suite tells one story: every verdict is computed once and read the same way everywhere.

Read from the notebooks' stored outputs (what a student reads, and what nbval compares a fresh run against):

- every printed claim line (``[claim ID] ...: WORD; ...``, minicam.suite.claims) of one id is the same line in
  every notebook, and it is the committed result (minicam/suite/claims/results.json). nbval re-executes the
  teaching notebook's ``claims.compute(ID)`` and compares it with the stored line, so together the two check
  results.json against a fresh computation without one notebook depending on another's run;
- every registered claim is printed by the notebook that teaches it;
- no notebook but 00 (where the bootstrap is derived on a hand case) prints a raw ``paired_bootstrap`` verdict:
  a comparison that is not a claim would be a verdict measured on a sample of its own;
- a markdown sentence that names a claim id says that claim's verdict word and no other of its family;
- each notebook states its study time (minicam.suite.study) and opens with a summary in Korean, Japanese and
  Chinese; no teaching notebook is over about 3,000 words of prose or 60 cells.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from minicam.suite import claims, study

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
RAW_BOOTSTRAP = re.compile(r"\(\d+% interval, \d+ pairs, \d+ images\): (a|b|tie)\b")
WORDS = {  # a verdict word and the forms of it prose may use
    "paired": {"ahead": r"ahead", "behind": r"behind", "tie": r"ti(e|es|ed)"},
    "sanity": {"passes": r"pass(es|ed)?", "fails": r"fail(s|ed)?", "unclear": r"unclear", "no ranks": r"no ranks"},
}
MAX_WORDS, MAX_CELLS = 3000, 60
TEACHING = [p for p in NOTEBOOKS if re.match(r"\d", p.name)]    # A1_... are appendices
SENTENCE = re.compile(r"(?<=[.!?;:])\s+(?=[A-Z*(`\"])|\n\s*\n|\n(?=\s*[-*] )|\n(?=\|)")


def _nb(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _text(x) -> str:
    return "".join(x) if isinstance(x, list) else x


def _outputs(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(_text(out["text"]))
        elif "data" in out and "text/plain" in out["data"]:
            parts.append(_text(out["data"]["text/plain"]))
    return "\n".join(parts)


def printed_claims(nb: dict) -> list[tuple[int, str, str]]:
    """(cell index, claim id, the whole printed line) of every claim line in the stored outputs."""
    found = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            for line in _outputs(cell).splitlines():
                m = claims.LINE.match(line.strip())
                if m:
                    found.append((i, m["id"], line.strip()))
    return found


def verdict_sentences(nb: dict, ids) -> list[tuple[int, str, str]]:
    """(cell index, claim id, sentence) for every markdown sentence that names a claim id in backticks."""
    found = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        for sentence in SENTENCE.split(_text(cell["source"])):
            for id in re.findall(r"`([A-Za-z0-9_.\-]+)`", sentence or ""):
                if id in ids:
                    found.append((i, id, sentence))
    return found


def story_problems(notebooks: dict[str, dict], stored: dict) -> list[str]:
    """Every way the notebooks break the story, as sentences (empty: the story holds)."""
    problems, lines, printed_in = [], {}, {}
    for name, nb in notebooks.items():
        for i, id, line in printed_claims(nb):
            lines.setdefault(id, {}).setdefault(line, []).append(f"{name} c{i}")
            printed_in.setdefault(id, set()).add(name)
        if not name.startswith("00_"):
            for i, cell in enumerate(nb["cells"]):
                if cell["cell_type"] == "code" and RAW_BOOTSTRAP.search(_outputs(cell)):
                    problems.append(f"{name} c{i} prints a raw paired_bootstrap verdict: make it a claim "
                                    "(minicam.suite.claims) and print claims.compute or claims.cite")
    for id, variants in lines.items():
        if id not in claims.CLAIMS:
            problems.append(f"claim {id} is printed ({', '.join(sum(variants.values(), []))}) but not registered")
            continue
        if len(variants) > 1:
            problems.append(f"claim {id} is printed with {len(variants)} different results: "
                            + " | ".join(f"{', '.join(w)}: {l}" for l, w in variants.items()))
        want = str(stored[id]) if id in stored else None
        for line, where in variants.items():
            if line != want:
                problems.append(f"claim {id} at {', '.join(where)} prints {line!r}; results.json holds {want!r}")
    for id, claim in claims.CLAIMS.items():
        if claim.taught_in in notebooks and claim.taught_in not in printed_in.get(id, set()):
            problems.append(f"claim {id} is taught in {claim.taught_in}, which does not print it (claims.compute)")
    for name, nb in notebooks.items():
        for i, id, sentence in verdict_sentences(nb, claims.CLAIMS):
            if id not in stored:
                continue
            family = WORDS[stored[id].kind]
            said = {w for w, form in family.items() if re.search(rf"\b{form}\b", sentence, re.I)}
            if said != {stored[id].word}:
                problems.append(f"{name} c{i}: the sentence naming claim {id} says "
                                f"{', '.join(sorted(said)) or 'no verdict word'}, its result is "
                                f"{stored[id].word!r}: {sentence.strip()[:200]!r}")
    return problems


@pytest.fixture(scope="module")
def notebooks():
    return {p.stem: _nb(p) for p in NOTEBOOKS}


def test_every_verdict_is_one_claim_printed_alike_everywhere(notebooks):
    claims._load()
    problems = story_problems(notebooks, claims.results())
    assert not problems, "\n".join(problems)


def test_results_json_holds_exactly_the_registered_claims():
    claims._load()
    stored = claims.results()
    assert set(stored) == set(claims.CLAIMS), (
        f"results.json and the registry differ: only stored {sorted(set(stored) - set(claims.CLAIMS))}, only "
        f"registered {sorted(set(claims.CLAIMS) - set(stored))}: run python -m minicam.suite.claims")
    for id, r in stored.items():
        claim = claims.CLAIMS[id]
        assert (r.a, r.b, r.metric, r.model, r.layer) == (claim.a, claim.b, claim.metric, claim.model, claim.layer), id


def test_every_claim_is_taught_in_a_notebook_of_the_suite():
    claims._load()
    names = {p.stem for p in NOTEBOOKS}
    for id, claim in claims.CLAIMS.items():
        assert claim.taught_in in names, f"claim {id}: taught_in {claim.taught_in!r} is no notebook"
        assert claim.sample in claims.SAMPLES, f"claim {id}: sample {claim.sample!r} is not registered"


# --- the checks themselves, on made-up notebooks: each fails when it should -----------------------------------

def _fake(cells):
    out = []
    for kind, text in cells:
        if kind == "md":
            out.append({"cell_type": "markdown", "metadata": {}, "source": text})
        else:
            out.append({"cell_type": "code", "metadata": {}, "source": "", "outputs": [
                {"output_type": "stream", "name": "stdout", "text": text}]})
    return {"cells": out}


@pytest.fixture()
def one_claim(monkeypatch):
    """A registered claim 'zz.test' taught in 'zz_teach', and its stored result (a tie)."""
    claims._load()
    claim = claims.Claim("zz.test", "paired", "q?", "hit %", "A", "B", "m", "l", "held-100", "higher", "zz_teach",
                         lambda: None)
    monkeypatch.setitem(claims.CLAIMS, "zz.test", claim)
    result = claims.Result("zz.test", "paired", "A", "B", "hit %", "m", "l", "tie", 50.0, 45.0, 5.0, -1.0, 11.0, 40, 20)
    return {"zz.test": result}


def _only_fake(problems):
    return [p for p in problems if "zz" in p or "raw paired_bootstrap" in p]


def test_the_story_holds_on_a_consistent_pair(one_claim):
    line = str(one_claim["zz.test"])
    nbs = {"zz_teach": _fake([("code", line + "\n"), ("md", "So A and B tie (claim `zz.test`).")]),
           "zz_other": _fake([("md", "As `zz.test` shows, they tie."), ("code", "x\n" + line + "\n")])}
    assert _only_fake(story_problems(nbs, one_claim)) == []


def test_two_results_for_one_id_fail(one_claim):
    line = str(one_claim["zz.test"])
    nbs = {"zz_teach": _fake([("code", line)]), "zz_other": _fake([("code", line.replace("n = 40", "n = 41"))])}
    problems = _only_fake(story_problems(nbs, one_claim))
    assert any("2 different results" in p for p in problems), problems


def test_a_sentence_with_another_verdict_word_fails(one_claim):
    nbs = {"zz_teach": _fake([("code", str(one_claim["zz.test"])), ("md", "A is ahead of B (`zz.test`).")])}
    problems = _only_fake(story_problems(nbs, one_claim))
    assert any("says ahead" in p for p in problems), problems


def test_a_raw_bootstrap_verdict_outside_00_fails(one_claim):
    raw = "+0.1 [-0.02, +0.2] (95% interval, 40 pairs, 20 images): tie"
    nbs = {"zz_teach": _fake([("code", str(one_claim["zz.test"]))]), "00_intro": _fake([("code", raw)]),
           "05_x": _fake([("code", raw)])}
    problems = _only_fake(story_problems(nbs, one_claim))
    assert problems == [p for p in problems if p.startswith("05_x")] and len(problems) == 1, problems


def test_a_claim_its_notebook_does_not_print_fails(one_claim):
    nbs = {"zz_teach": _fake([("md", "nothing")]), "zz_other": _fake([("code", str(one_claim["zz.test"]))])}
    problems = _only_fake(story_problems(nbs, one_claim))
    assert any("does not print it" in p for p in problems), problems


# --- length, study time, the summaries in the documents' languages --------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_states_its_study_time(path):
    nb = _nb(path)
    said, measured = study.stated(nb), study.estimate(nb)
    assert said == measured, (f"{path.name} states {said} min, its length gives {measured} min: "
                              f"python -m minicam.suite.study --write {path.relative_to(ROOT)}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_opens_with_a_summary_in_korean_japanese_and_chinese(path):
    second = _text(_nb(path)["cells"][1]["source"])
    for lang, script in (("ko", r"[\uac00-\ud7a3]"), ("ja", r"[\u3040-\u30ff]"), ("zh", r"[\u4e00-\u9fff]")):
        block = re.search(rf'<div lang="{lang}">(.*?)</div>', second, re.S)
        assert block and re.search(script, block[1]), f"{path.name}: cell 1 needs a <div lang=\"{lang}\"> summary"


@pytest.mark.parametrize("path", TEACHING, ids=lambda p: p.stem)
def test_no_teaching_notebook_is_over_the_limits(path):
    nb = _nb(path)
    n = study.counts(nb)
    cells = len(study._cells(nb))
    assert n["words"] <= MAX_WORDS * 1.05 and cells <= MAX_CELLS, (
        f"{path.name}: {n['words']} words of prose and {cells} cells; the limits are about {MAX_WORDS} words and "
        f"{MAX_CELLS} cells: split it or move a detour to an appendix")
