"""minicam.suite.claims: a claim's verdict is paired_bootstrap's, read in the claim's sense of better; results.json
is written whole (merged under --only), and a missing or unknown claim says what to run."""
import json

import pytest
import torch

from minicam.metrics import paired_bootstrap
from minicam.suite import claims


@pytest.fixture()
def registry(monkeypatch, tmp_path):
    """An empty registry with one sample and a results file of its own, so the suite's claims are not run."""
    claims._load()
    monkeypatch.setattr(claims, "CLAIMS", {})
    monkeypatch.setattr(claims, "RESULTS", tmp_path / "results.json")
    monkeypatch.setitem(claims.SAMPLES, "zz-sample", claims.Sample("zz-sample", "made up", lambda: None))
    return tmp_path / "results.json"


def _register(id, a, b, images, better="higher"):
    claims.paired_claim(id, question="q?", metric="score", a="A", b="B", model="m", layer="l", sample="zz-sample",
                        taught_in="zz", better=better)(lambda: (a, b, images))


A = [1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0]
B = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
IMAGES = [0, 0, 1, 1, 2, 2, 3, 3]


def test_the_verdict_is_paired_bootstraps_in_the_claims_sense(registry):
    _register("zz.higher", A, B, IMAGES)
    _register("zz.lower", A, B, IMAGES, better="lower")
    r = paired_bootstrap(torch.tensor(A), torch.tensor(B), images=torch.tensor(IMAGES))
    high, low = claims.compute("zz.higher"), claims.compute("zz.lower")
    assert (high.diff, high.low, high.high, high.n, high.images) == (r.diff, r.low, r.high, 8, 4)
    assert r.verdict == "a" and high.word == "ahead" and low.word == "behind"
    assert str(high).startswith("[claim zz.higher] A vs B, score, m l: ahead; A 0.75, B 0.25, a - b = +0.5 [")
    assert claims.LINE.match(str(high))["word"] == "ahead"


def test_a_tie_is_a_tie_either_way(registry):
    _register("zz.tie", [1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0], [0, 0, 1, 1], better="lower")
    assert claims.compute("zz.tie").word == "tie"


def test_a_sanity_claim_reads_randomization_verdict(registry):
    claims.sanity_claim("zz.sanity", question="q?", metric="|rho|", a="map", b="randomised", model="m", layer="l",
                        sample="zz-sample", taught_in="zz")(lambda: ([0.1, 0.05, 0.2, 0.1], [0, 1, 2, 3]))
    r = claims.compute("zz.sanity")
    assert r.word == "passes" and claims.LINE.match(str(r))["word"] == "passes"


def test_write_then_cite_prints_the_computed_line_and_only_merges(registry, capsys):
    _register("zz.one", A, B, IMAGES)
    _register("zz.two", B, A, IMAGES)
    assert claims.main([]) == 0
    assert str(claims.cite("zz.one")) == str(claims.compute("zz.one"))
    before = json.loads(registry.read_text())
    assert claims.main(["--only", "zz.two"]) == 0
    assert json.loads(registry.read_text()) == before          # the other claim is kept
    assert claims.main(["--check"]) == 0
    assert not list(registry.parent.glob(".results.*")), "no temporary file is left"


def test_check_fails_when_the_stored_result_is_stale(registry, capsys):
    _register("zz.one", A, B, IMAGES)
    claims.main([])
    stored = json.loads(registry.read_text())
    stored["zz.one"]["n"] = 99
    registry.write_text(json.dumps(stored))
    assert claims.main(["--check"]) == 1
    assert "stored:" in capsys.readouterr().out


def test_unknown_ids_say_what_exists(registry):
    _register("zz.one", A, B, IMAGES)
    with pytest.raises(KeyError, match="zz.one"):
        claims.compute("zz.nope")
    with pytest.raises(SystemExit) as err:
        claims.main(["--only", "nothing."])
    assert err.value.code == 2


def test_a_claim_without_a_stored_result_says_how_to_store_it(registry):
    _register("zz.one", A, B, IMAGES)
    with pytest.raises(FileNotFoundError, match="python -m minicam.suite.claims"):
        claims.cite("zz.one")
    claims.main(["--only", "zz.one"])
    _register("zz.two", A, B, IMAGES)
    with pytest.raises(KeyError, match="--only zz.two"):
        claims.cite("zz.two")


def test_bad_registrations_are_refused(registry):
    with pytest.raises(ValueError, match="letters, digits"):
        _register("zz one", A, B, IMAGES)
    with pytest.raises(ValueError, match="higher' or 'lower"):
        _register("zz.x", A, B, IMAGES, better="more")


def test_a_claim_prints_the_digits_it_asks_for(registry):
    claims.paired_claim("zz.two-digits", question="q?", metric="score", a="A", b="B", model="m", layer="l",
                        sample="zz-sample", taught_in="zz", digits=2)(lambda: ([0.6789, 0.1234], [0.1111, 0.2222], [0, 1]))
    line = str(claims.compute("zz.two-digits"))
    assert "A 0.4, B 0.17, a - b = +0.23 [" in line, line
    claims.main(["--only", "zz.two-digits"])
    assert str(claims.cite("zz.two-digits")) == line            # results.json keeps the digits
    with pytest.raises(ValueError, match="digits must be an int from 1 to 6"):
        claims.paired_claim("zz.bad", question="q?", metric="s", a="A", b="B", model="m", layer="l",
                            sample="zz-sample", taught_in="zz", digits=0)
