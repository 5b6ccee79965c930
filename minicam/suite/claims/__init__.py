"""The suite's comparative claims, each computed in one place.

A claim answers one question of the suite ("does Grad-CAM++ cover several objects of one class better than
Grad-CAM?") with one metric, on one model and layer, on one named sample, by one paired test. Every claim is
registered here by id, in the module of the notebook that teaches it (``nbNN.py`` beside this file); that
notebook calls ``compute(id)`` and shows the computation, any other notebook that states the claim calls
``cite(id)``, which reads the committed results (``results.json``, written by ``python -m minicam.suite.claims``)
and prints the same line. tests/test_story.py reads every notebook's stored outputs and fails when one id is
printed with two different results, or when the prose beside a claim says another verdict word.

Two kinds of claim:

- paired: a per-pair score for side a and for side b on the same (image, class) pairs; the verdict is
  ``minicam.metrics.paired_bootstrap``'s (images resampled, 95 % percentile interval of the mean difference),
  read in the claim's sense of better: "ahead" (a better than b, the interval excludes 0), "behind", or "tie".
- sanity: one |Spearman rho| per image between the trained model's map and a randomised model's map;
  the verdict is ``minicam.sanity.randomization_verdict``'s: "passes" (interval below 0.5), "fails", "unclear".

The printed line, one per claim, is the form a test reads::

    [claim 01.pointing] saliency vs Grad-CAM, pointing game (hit %), shapes_vgg relu6: tie; saliency 40.3,
    Grad-CAM 50.7, a - b = -10.4 [-21.6, +0.746], n = 134 pairs from 60 images
"""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import re
import sys
from pathlib import Path
from typing import Callable, NamedTuple

import torch

from ...apps._common import write_atomic

__all__ = ["Claim", "Result", "CLAIMS", "SAMPLES", "paired_claim", "sanity_claim", "sample", "compute", "values",
           "cite", "register_sample", "RESULTS", "LINE", "main"]

RESULTS = Path(__file__).with_name("results.json")
PAIRED_WORDS = ("ahead", "behind", "tie")
SANITY_WORDS = ("passes", "fails", "unclear", "no ranks")
# The printed line of a result; tests/test_story.py finds claims in stored outputs with this.
LINE = re.compile(r"^\[claim (?P<id>[A-Za-z0-9_.\-]+)\] (?P<body>.*?): (?P<word>ahead|behind|tie|passes|fails|unclear|no ranks); ",
                  re.M)


class Claim(NamedTuple):
    """One registered claim: what it asks and how it is computed (``fn`` returns the per-pair values)."""
    id: str
    kind: str            # "paired" or "sanity"
    question: str
    metric: str
    a: str
    b: str
    model: str
    layer: str
    sample: str          # a key of SAMPLES
    better: str          # "higher" or "lower" (paired); "lower" for sanity (|rho| below 0.5 passes)
    taught_in: str       # the notebook that computes it, e.g. "05_gradcam_pp"
    fn: Callable
    digits: int = 3      # significant digits printed: fewer where a float32 model on few images moves the third


class Result(NamedTuple):
    """A claim's result: the sides' means, a - b with its 95 % interval, the verdict word, and n."""
    id: str
    kind: str
    a: str
    b: str
    metric: str
    model: str
    layer: str
    word: str
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    n: int
    images: int
    digits: int = 3

    def __str__(self) -> str:
        where = f"{self.model} {self.layer}".strip()
        if self.kind == "sanity":
            return (f"[claim {self.id}] {self.a} vs {self.b}, {self.metric}, {where}: {self.word}; "
                    f"mean |rho| {self.diff:.2f} [{self.low:.2f}, {self.high:.2f}], n = {self.n} images")
        d = self.digits
        return (f"[claim {self.id}] {self.a} vs {self.b}, {self.metric}, {where}: {self.word}; "
                f"{self.a} {self.mean_a:.{d}g}, {self.b} {self.mean_b:.{d}g}, a - b = {self.diff:+.{d}g} "
                f"[{self.low:+.{d}g}, {self.high:+.{d}g}], n = {self.n} pairs from {self.images} images")

    __repr__ = __str__


class Sample(NamedTuple):
    name: str
    description: str     # seeds and size, in words, for the notebooks and the claims list
    fn: Callable


CLAIMS: dict[str, Claim] = {}
SAMPLES: dict[str, Sample] = {}
_sample_cache: dict[str, object] = {}
_loaded = False


def _load() -> None:
    # the claims live in the teaching notebooks' modules nbNN.py beside this file; import them all once
    global _loaded
    if not _loaded:
        _loaded = True
        importlib.import_module(f"{__name__}.samples")
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if info.name.startswith("nb"):
                importlib.import_module(f"{__name__}.{info.name}")


def register_sample(name: str, description: str):
    """Decorator: ``fn()`` builds the named sample (images, labels, masks, pairs); built once a process."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        raise ValueError(f"a sample's name must be a non-empty str of letters, digits, '.', '_' and '-', got {name!r}")

    def wrap(fn):
        if name in SAMPLES and SAMPLES[name].fn is not fn:
            raise ValueError(f"sample {name!r} is registered twice")
        SAMPLES[name] = Sample(name, description, fn)
        return fn
    return wrap


def sample(name: str):
    """The named sample, built once a process (every claim on one question uses the same one)."""
    _load()
    if name not in SAMPLES:
        raise KeyError(f"no sample {name!r} (name): give one of {sorted(SAMPLES)}")
    if name not in _sample_cache:
        _sample_cache[name] = SAMPLES[name].fn()
    return _sample_cache[name]


def _register(kind: str, id: str, *, question: str, metric: str, a: str, b: str, model: str, layer: str,
              sample: str, taught_in: str, better: str = "higher", digits: int = 3):
    if not isinstance(id, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", id):
        raise ValueError(f"a claim's id must be a non-empty str of letters, digits, '.', '_' and '-', got {id!r}")
    if better not in ("higher", "lower"):
        raise ValueError(f"claim {id}: better must be 'higher' or 'lower', not {better!r}")
    if not isinstance(digits, int) or isinstance(digits, bool) or not 1 <= digits <= 6:
        raise ValueError(f"claim {id}: digits must be an int from 1 to 6 (significant digits printed), not {digits!r}")
    if not all(isinstance(v, str) and v for v in (question, metric, a, b, sample, taught_in)):
        raise ValueError(f"claim {id}: question, metric, a, b, sample and taught_in must be non-empty strings")

    def wrap(fn):
        if id in CLAIMS and CLAIMS[id].fn is not fn:
            raise ValueError(f"claim {id!r} is registered twice")
        CLAIMS[id] = Claim(id, kind, question, metric, a, b, model, layer, sample, better, taught_in, fn, digits)
        return fn
    return wrap


def paired_claim(id: str, **kw):
    """Decorator: ``fn()`` returns (a, b, images): one score per pair for each side, and each pair's image."""
    return _register("paired", id, **kw)


def sanity_claim(id: str, **kw):
    """Decorator: ``fn()`` returns (rho, images): one Spearman rho per image (NaN where a map is constant)."""
    kw.setdefault("better", "lower")
    return _register("sanity", id, **kw)


def _claim(id: str) -> Claim:
    _load()
    if not isinstance(id, str) or id not in CLAIMS:
        near = [c for c in CLAIMS if isinstance(id, str) and c.split(".")[0] == id.split(".")[0]]
        raise KeyError(f"no claim {id!r} (id): give a registered id, "
                       + (f"e.g. one of that notebook's: {', '.join(near[:12])}" if near else
                          "listed by python -m minicam.suite.claims --list"))
    return CLAIMS[id]


def values(id: str):
    """The claim's raw values as its function computes them: (a, b, images) or (rho, images)."""
    claim = _claim(id)
    torch.manual_seed(0)
    with torch.random.fork_rng():
        return claim.fn()


def compute(id: str) -> Result:
    """Compute the claim afresh (what the notebook that teaches it shows)."""
    from minicam.metrics import paired_bootstrap
    from minicam.sanity import randomization_verdict

    claim = _claim(id)
    out = values(id)
    if claim.kind == "sanity":
        rho, images = out
        v = randomization_verdict(torch.as_tensor(rho, dtype=torch.float64), images=images)
        return Result(id, "sanity", claim.a, claim.b, claim.metric, claim.model, claim.layer, v.verdict,
                      float("nan"), float("nan"), v.mean, v.low, v.high, v.used, v.used)
    a, b, images = out
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    r = paired_bootstrap(a, b, images=images)
    higher = {"a": "ahead", "b": "behind", "tie": "tie"}[r.verdict]
    word = higher if claim.better == "higher" else {"ahead": "behind", "behind": "ahead", "tie": "tie"}[higher]
    return Result(id, "paired", claim.a, claim.b, claim.metric, claim.model, claim.layer, word,
                  a.mean().item(), b.mean().item(), r.diff, r.low, r.high, r.pairs, r.images, claim.digits)


def results() -> dict[str, Result]:
    """The committed results, by id (results.json)."""
    if not RESULTS.exists():
        raise FileNotFoundError(f"{RESULTS} is missing: write it with python -m minicam.suite.claims")
    return {k: Result(**v) for k, v in json.loads(RESULTS.read_text(encoding="utf-8")).items()}


def cite(id: str) -> Result:
    """The committed result of a claim taught in another notebook: the line its notebook prints."""
    _claim(id)
    stored = results()
    if id not in stored:
        raise KeyError(f"claim {id!r} has no stored result: run python -m minicam.suite.claims --only {id}")
    return stored[id]


def _write(new: dict[str, Result], only: list[str] | None) -> None:
    # merge under a lock (several writers may run at once), then write a temporary file and rename it
    lock = RESULTS.with_suffix(".lock")
    with open(lock, "w") as held:
        try:
            import fcntl   # POSIX; on Windows one writer at a time is the user's business
            fcntl.flock(held, fcntl.LOCK_EX)
        except ImportError:
            pass
        old = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() and only else {}
        old = {k: v for k, v in old.items() if k in CLAIMS}
        old.update({k: r._asdict() for k, r in new.items()})
        text = json.dumps(dict(sorted(old.items())), indent=1, ensure_ascii=False) + "\n"
        write_atomic(RESULTS, lambda f: f.write(text.encode("utf-8")))
    lock.unlink(missing_ok=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minicam.suite.claims",
                                     description="Compute the suite's claims and write minicam/suite/claims/results.json.")
    parser.add_argument("--only", nargs="+", metavar="PREFIX", help="only the claims whose id starts with one of these")
    parser.add_argument("--check", action="store_true", help="compare with results.json instead of writing it")
    parser.add_argument("--list", action="store_true", help="list the claims: id, question, sample, taught in")
    args = parser.parse_args(argv)
    _load()
    ids = [c for c in CLAIMS if not args.only or any(c.startswith(p) for p in args.only)]
    if args.only and not ids:
        parser.error(f"--only {' '.join(args.only)}: no claim id starts with it; give a prefix of a registered id "
                     "(python -m minicam.suite.claims --list lists them)")
    if args.list:
        for c in ids:
            claim = CLAIMS[c]
            print(f"{c}\t{claim.question}\t{claim.metric}\t{claim.model} {claim.layer}\t{claim.sample}: "
                  f"{SAMPLES[claim.sample].description if claim.sample in SAMPLES else '?'}\t{claim.taught_in}")
        return 0
    fresh = {c: compute(c) for c in ids}
    if args.check:
        stored = results()
        wrong = [c for c in ids if c not in stored or str(stored[c]) != str(fresh[c])]
        for c in wrong:
            print(f"stored:   {stored.get(c, '(none)')}\ncomputed: {fresh[c]}")
        return 1 if wrong else 0
    _write(fresh, args.only)
    for r in fresh.values():
        print(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
