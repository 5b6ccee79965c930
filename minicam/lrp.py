"""Layer-wise relevance propagation (LRP) and Relevance-CAM.

LRP (Bach et al. 2015; Montavon et al. 2019, "Layer-Wise Relevance Propagation: An Overview") starts
from a relevance R at the output and hands it back layer by layer, each neuron k sharing its R_k among
its inputs j in proportion to their contributions z_jk = a_j w_jk to z_k = sum_{0,j} a_j w_jk (the
bias is the contribution of a constant input a_0 = 1):

    R_j = sum_k  a_j rho(w_jk) / (eps + sum_{0,j} a_j rho(w_jk))  R_k     (the generic rule, sec. 10.2.2)

Conservation: sum_j R_j = sum_k R_k, exact for LRP-0 without bias; a bias or eps absorbs the rest.
Each rule below (`rule=` for every Conv2d and Linear, `first_rule=` for the first one) is one short
function with its formula. Pooling and the residual sum are shared proportionally (LRP-0, no eps):
average pooling (AvgPool2d, AdaptiveAvgPool2d of any output size) as a linear layer with positive
weights, max pooling winner-take-all, a + b in proportion to a and b; Dropout (eval) passes R on.

Every rule is one call of the "gradient trick" (Montavon et al. 2019, sec. 10.2.2, four steps): with
z = layer(a), s = R / z held constant, c = d(z . s)/da, R_a = a * c -- so one code path serves
Conv2d and Linear, and a rule is only the choice of (inputs, weights, bias) put into z.

The model is first turned into a plan: an immutable chain of steps with each layer's rule chosen
once, BatchNorm folded into the conv before it and a torchvision ResNet or VGG rewired into a chain
(`torchvision_chain`: their forward() calls torch.flatten, which is no module). The walk back through
the plan yields (step, relevance) lazily.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from functools import partial
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet
from torchvision.models.vgg import VGG

from .checks import (Layer, NotApplicable, Target, Unsupported, check_feature_maps, check_finite, check_images,
                     check_model, check_number, check_targets, preserved, resolve_layer)
from .gradients import weighted_sum
from .hooks import pair_rows, per_image

__all__ = ["lrp", "relevance_cam", "contrastive_start"]

RULES = ("zero", "epsilon", "gamma", "zplus", "alpha_beta")
FIRST_RULES = RULES + ("zb",)
STARTS = ("logit", "survey", "authors")
DEFAULTS = {"eps": 0.25, "gamma": 0.25, "alpha": 1.0, "beta": 0.0, "bounds": (0.0, 1.0)}
USES = {"epsilon": ("eps",), "gamma": ("gamma",), "alpha_beta": ("alpha", "beta"), "zb": ("bounds",)}

_PASS = (nn.ReLU, nn.Dropout, nn.Identity)   # relevance goes through unchanged
_LEAVES = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
           nn.Flatten) + _PASS
SUPPORTED = ("Conv2d, Linear, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, Dropout, Identity, "
             "BatchNorm2d (right after a Conv2d), nn.Sequential, torchvision ResNet with BasicBlocks, torchvision VGG")
# The chain and model(x) may differ by this many units of the dtype's precision (torch.finfo(dtype).eps).
REPRODUCE_ULPS = 16  # float16: 1.6 %, bfloat16: 12.5 %; float32 and float64 keep the floor 1e-4
# torchvision models whose forward() runs these children, then torch.flatten(x, 1), then the head.
_FLATTENS = {ResNet: (("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"), "fc"),
             VGG: (("features", "avgpool"), "classifier")}


# ---- the start: what the output hands to the last layer ---------------------------------------

def contrastive_start(scores: torch.Tensor, target: Target, kind: str = "survey") -> torch.Tensor:
    """Contrastive start relevance for Relevance-CAM (Lee et al., CVPR 2021), (N, C).

    kind="survey":  +1 at the target, -1/(C-1) at every other class; each row sums to 0 (the Korean
                    survey's CLRP: the other classes' evidence is subtracted).
    kind="authors": +1 at the target, -1/C at the others; each row sums to 1/C. The authors' code
                    propagates the one-hot T_t and T_n = 1/C off the target separately and subtracts;
                    every rule here is linear in R, so starting from T_t - T_n gives the same result.
    Neither is multiplied by the logit. scores: (N, C) only give N, C, dtype and device.
    """
    if kind not in ("survey", "authors"):
        raise ValueError(f"kind must be 'survey' (others -1/(C-1), sum 0) or 'authors' (others -1/C, "
                         f"sum 1/C), got {kind!r}")
    if check_finite(scores, "scores", dims=(2,), shape="(N, C)").shape[1] < 2:
        raise ValueError(f"scores must have at least 2 classes (columns) for a contrastive start, got shape "
                         f"{tuple(scores.shape)}")
    return _contrastive(scores, check_targets(target, len(scores), scores.shape[1]).to(scores.device), kind)


def _contrastive(scores: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    n, c = scores.shape
    start = torch.full_like(scores, -1.0 / (c - 1 if kind == "survey" else c))
    start[torch.arange(n, device=scores.device), targets] = 1.0
    return start


def _start_relevance(scores: torch.Tensor, targets: torch.Tensor, start: str) -> torch.Tensor:
    """start="logit": the one-hot of the target times its logit, so the relevance to explain is y^c
    itself; "survey" or "authors": `contrastive_start` of that kind."""
    if start != "logit":
        return _contrastive(scores, targets, start)
    relevance = torch.zeros_like(scores)
    idx = torch.arange(len(scores), device=scores.device)
    relevance[idx, targets] = scores[idx, targets]
    return relevance


def _check_start(start) -> str:
    if start not in STARTS:
        raise ValueError(f"start must be 'logit' (one-hot times the logit y^c), 'survey' (others -1/(C-1)) "
                         f"or 'authors' (others -1/C), got {start!r}")
    return start


# ---- one layer: the gradient trick ------------------------------------------------------------

def _divide(R: torch.Tensor, z: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """s = R / (z + eps sign(z)) with sign(0) = +1; 0 where the denominator is 0 (that R is absorbed)."""
    den = z + eps * torch.where(z >= 0, 1.0, -1.0).to(z.dtype)
    zero = den == 0
    return torch.where(zero, torch.zeros_like(R), R / torch.where(zero, torch.ones_like(den), den))


def _redistribute(forward, inputs: list[torch.Tensor], R: torch.Tensor, eps: float = 0.0) -> list[torch.Tensor]:
    """The gradient trick: z = forward(x_1, x_2, ...) (linear in each x_i), s = R / z, and
    R_{x_i} = x_i * d(z . s)/dx_i with s held constant. Returns R_{x_i} for each input, same shapes."""
    with torch.enable_grad():
        xs = [x.detach().requires_grad_(True) for x in inputs]
        z = forward(*xs)
        grads = torch.autograd.grad(z, xs, grad_outputs=_divide(R, z.detach(), eps))
    return [x.detach() * g for x, g in zip(xs, grads)]


def _share(layer, pairs, bias, R, eps=0.0) -> torch.Tensor:
    """R shared among the inputs of z = sum_i layer(x_i, v_i) + bias, pairs = [(x_i, v_i), ...]."""
    forward = lambda *xs: sum(layer(x, v) for x, (_, v) in zip(xs, pairs)) + bias
    return sum(_redistribute(forward, [x for x, _ in pairs], R, eps))


# ---- the rules: R at the input a of z = layer(a, w) + b, from R at its output --------------------

def rule_zero(layer, w, b, a, R) -> torch.Tensor:
    """LRP-0 (Bach et al. 2015, eq. 56; Montavon et al. 2019, sec. 10.2.1):
    R_j = sum_k a_j w_jk / (sum_{0,j} a_j w_jk) R_k."""
    return _share(layer, [(a, w)], b, R)


def rule_epsilon(layer, w, b, a, R, eps) -> torch.Tensor:
    """LRP-eps (Bach et al. 2015, eq. 58): R_j = sum_k a_j w_jk / (z_k + eps sign(z_k)) R_k, sign(0) = +1.
    eps is absolute, in the units of z (Montavon et al.'s tutorial takes a fraction of z's std)."""
    return _share(layer, [(a, w)], b, R, eps)


def rule_gamma(layer, w, b, a, R, gamma) -> torch.Tensor:
    """LRP-gamma (Montavon et al. 2019, sec. 10.2.1): rho(w) = w + gamma w+, the bias likewise
    rho(b) = b + gamma b+:  R_j = sum_k a_j rho(w_jk) / (sum_{0,j} a_j rho(w_jk)) R_k."""
    return _share(layer, [(a, w + gamma * w.clamp(min=0))], b + gamma * b.clamp(min=0), R)


def rule_alpha_beta(layer, w, b, a, R, alpha, beta) -> torch.Tensor:
    """LRP-alpha-beta (Bach et al. 2015, eq. 60), alpha - beta = 1:
    R_j = sum_k (alpha (a_j w_jk)+ / z_k+  -  beta (a_j w_jk)- / z_k-) R_k, with z_k+ = sum_j (a_j w_jk)+
    + b_k+ and z_k- likewise: the bias, as the input a_0 = 1, joins the side of its sign."""
    wp, wn = w.clamp(min=0), w.clamp(max=0)
    ap, an = a.clamp(min=0), a.clamp(max=0)
    # (a w)+ = a+ w+ + a- w-: the positive contributions, whatever the sign of the input.
    relevance = alpha * _share(layer, [(ap, wp), (an, wn)], b.clamp(min=0), R)
    if beta:
        relevance = relevance - beta * _share(layer, [(ap, wn), (an, wp)], b.clamp(max=0), R)
    return relevance


def rule_zplus(layer, w, b, a, R) -> torch.Tensor:
    """The z+ rule: alpha-beta with alpha = 1, beta = 0 (Bach et al. 2015, eq. 60):
    R_j = sum_k (a_j w_jk)+ / (sum_j (a_j w_jk)+ + b_k+) R_k."""
    return rule_alpha_beta(layer, w, b, a, R, 1.0, 0.0)


def rule_zb(layer, w, b, a, R, bounds) -> torch.Tensor:
    """z^B for the input layer, pixels within bounds (l, h) (Montavon et al. 2019, sec. 10.3.2):
    R_i = sum_j (x_i w_ij - l_i w_ij+ - h_i w_ij-) / sum_i (x_i w_ij - l_i w_ij+ - h_i w_ij-) R_j,
    without bias, as there and in the Relevance-CAM authors' code."""
    low, high = (torch.as_tensor(v, dtype=a.dtype, device=a.device).expand_as(a) for v in bounds)
    # The bounds enter z as two more "inputs", with the weights' negated positive and negative parts.
    return _share(layer, [(a, w), (low, -w.clamp(min=0)), (high, -w.clamp(max=0))], 0.0, R)


def _rule(name: str, p: dict) -> Callable:
    """Rule `name` with its parameters bound: f(layer, w, b, a, R)."""
    rules = {"zero": rule_zero, "epsilon": partial(rule_epsilon, eps=p["eps"]),
             "gamma": partial(rule_gamma, gamma=p["gamma"]), "zplus": rule_zplus,
             "alpha_beta": partial(rule_alpha_beta, alpha=p["alpha"], beta=p["beta"]),
             "zb": partial(rule_zb, bounds=p["bounds"])}
    return rules[name]


# ---- the plan: the model as an immutable chain of steps -----------------------------------------

@dataclass(frozen=True)
class Step:
    """One layer of the chain. outputs: the names whose output is this step's output (the module
    itself, Sequentials it ends, a BatchNorm folded into it); hidden: names inside it with no output
    of their own here (a Conv2d whose BatchNorm was folded in); bn: that BatchNorm; branches: a
    residual block's (main, shortcut) chains; rule: f(layer, w, b, a, R) for a Conv2d or Linear."""
    name: str
    module: nn.Module
    outputs: tuple = ()
    hidden: tuple = ()
    bn: nn.BatchNorm2d | None = None
    branches: tuple | None = None
    rule: Callable | None = None


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def torchvision_chain(model: nn.Module, name: str = "") -> list[Step]:
    """torchvision's ResNet.forward (stem, layer1..4, avgpool, flatten, fc) or VGG.forward (features,
    avgpool, flatten, classifier) as a chain; the torch.flatten(x, 1) they call becomes a step."""
    kind = next(k for k in _FLATTENS if isinstance(model, k))
    body, head = _FLATTENS[kind]
    steps = [s for child in body for s in _chain(getattr(model, child), _join(name, child))]
    flatten = Step(f"torch.flatten in {kind.__name__}.forward", nn.Flatten())
    return steps + [flatten] + _chain(getattr(model, head), _join(name, head))


def _basic_block(block: BasicBlock, name: str) -> Step:
    """A BasicBlock: relu(main(x) + shortcut(x)), main = conv1 bn1 relu conv2 bn2."""
    main = [Step(_join(name, n), getattr(block, n), (_join(name, n),)) for n in ("conv1", "bn1", "relu", "conv2", "bn2")]
    main[2] = replace(main[2], outputs=())  # block.relu also runs after the sum: its output is ambiguous
    short = [] if block.downsample is None else _fold(_chain(block.downsample, _join(name, "downsample")))
    return Step(name, block, (name,), branches=(tuple(_fold(main)), tuple(short)))


def _chain(module: nn.Module, name: str) -> list[Step]:
    """The layers `module` runs, in forward order; nested Sequentials are opened up. A module that a
    Sequential holds twice is a step at each place (named_children would list it once)."""
    if type(module) is BasicBlock:  # a subclass may change forward(); the score check would catch it
        return [_basic_block(module, name)]
    if isinstance(module, _LEAVES):
        return [Step(name, module, (name,))]
    if isinstance(module, nn.Sequential):
        steps = [s for child, m in module._modules.items() if m is not None for s in _chain(m, _join(name, child))]
    elif isinstance(module, tuple(_FLATTENS)):
        steps = torchvision_chain(module, name)
    else:
        kind = ("nn." if type(module).__module__.startswith("torch.nn") else "") + type(module).__name__
        where = repr(name) if name else "the top (the model itself)"
        raise Unsupported(f"lrp does not support {kind} at {where}; supported: {SUPPORTED}")
    if steps:
        steps[-1] = replace(steps[-1], outputs=steps[-1].outputs + (name,))
    return steps


def _fold(steps: list[Step]) -> list[Step]:
    """Each BatchNorm2d joins the Conv2d before it (its weights are folded in by `fold_bn`)."""
    out: list[Step] = []
    for step in steps:
        if not isinstance(step.module, nn.BatchNorm2d):
            out.append(step)
            continue
        prev = out[-1] if out else None
        if prev is None or not isinstance(prev.module, nn.Conv2d) or prev.bn is not None:
            where = f"after {prev.name!r}" if prev else "at the start"
            raise Unsupported(f"lrp folds BatchNorm2d into the Conv2d right before it; the "
                              f"BatchNorm2d at {step.name!r} comes {where}")
        out[-1] = replace(prev, bn=step.module, hidden=prev.hidden + prev.outputs, outputs=step.outputs)
    return out


def _with_rules(steps, rule: Callable, first: Callable | None = None) -> tuple:
    """The steps with every Conv2d/Linear's rule set: `first` for the first one, `rule` for the rest."""
    out = []
    for step in steps:
        if isinstance(step.module, (nn.Conv2d, nn.Linear)):
            step, first = replace(step, rule=first or rule), None
        elif step.branches:
            step = replace(step, branches=tuple(_with_rules(branch, rule) for branch in step.branches))
        out.append(step)
    return tuple(out)


def plan(model: nn.Module, rule: str = "epsilon", first_rule: str | None = None, **params) -> tuple:
    """A checked model as an immutable chain of Steps, each Conv2d/Linear with its rule chosen once."""
    p = _check_params(rule, first_rule, params)
    return _with_rules(_fold(_chain(model, "")), _rule(rule, p), _rule(first_rule or rule, p))


def _all_steps(steps):
    for s in steps:
        yield s
        for branch in s.branches or ():
            yield from _all_steps(branch)


# ---- the walk: forward through the plan, then relevance back, lazily ----------------------------

class _Record(NamedTuple):
    """What one forward pass left at a step: its input and output, and a block's branch outputs
    (parts) and records."""
    input: torch.Tensor
    output: torch.Tensor
    parts: tuple = ()
    branches: tuple = ()


def fold_bn(weight: torch.Tensor, bias: torch.Tensor, bn: nn.BatchNorm2d):
    """(weight, bias) of the conv that computes conv -> bn in one, bn in eval mode.

    In eval mode BN is a fixed per-channel affine map, y = g (z - mean) / sd + b with
    sd = sqrt(var + eps), so it merges into the conv before it:
    w' = w g / sd, bias' = (bias - mean) g / sd + b. A BN without affine weights has g = 1, b = 0.
    """
    gamma = bn.weight.detach() if bn.weight is not None else torch.ones_like(bn.running_var)
    beta = bn.bias.detach() if bn.bias is not None else torch.zeros_like(bn.running_mean)
    scale = gamma / torch.sqrt(bn.running_var + bn.eps)
    return weight.detach() * scale[:, None, None, None], (bias.detach() - bn.running_mean) * scale + beta


def _affine(step: Step):
    """(layer(x, w) without bias, w, b broadcastable to the output) of a Conv2d/Linear step, BN folded."""
    m = step.module
    w = m.weight.detach()
    b = m.bias.detach() if m.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype, device=w.device)
    if step.bn is not None:
        w, b = fold_bn(w, b, step.bn)
    if isinstance(m, nn.Conv2d):
        return (lambda x, v: m._conv_forward(x, v, None)), w, b.view(1, -1, 1, 1)
    return (lambda x, v: F.linear(x, v)), w, b


def _forward(steps, a: torch.Tensor) -> tuple[torch.Tensor, list[_Record]]:
    """Run the chain on a, keeping what each step saw."""
    records = []
    for step in steps:
        if step.branches:
            (main, main_records), (short, short_records) = (_forward(branch, a) for branch in step.branches)
            records.append(_Record(a, torch.relu(main + short), (main, short), (main_records, short_records)))
        elif isinstance(step.module, (nn.Conv2d, nn.Linear)):
            layer, w, b = _affine(step)
            records.append(_Record(a, layer(a, w) + b))
        elif isinstance(step.module, nn.ReLU):
            records.append(_Record(a, torch.relu(a)))  # never in place: the input is kept
        else:
            records.append(_Record(a, step.module(a)))
        a = records[-1].output
    return a, records


def _relprop(step: Step, a: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """R at one (non-block) step's input a, from R at its output."""
    m = step.module
    if step.rule is not None:
        return step.rule(*_affine(step), a, R)
    if isinstance(m, nn.MaxPool2d):
        # Winner-take-all: the gradient of max pooling is the indicator of each window's maximum.
        with torch.enable_grad():
            x = a.detach().requires_grad_(True)
            return torch.autograd.grad(m(x), x, grad_outputs=R)[0]
    if isinstance(m, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
        return _redistribute(m, [a], R)[0]
    if isinstance(m, nn.Flatten):
        return R.reshape(a.shape)
    return R  # ReLU, Dropout (eval), Identity


def walk(steps, records, R: torch.Tensor):
    """Hand R back from the chain's output: yields (step, R at that step's output) from the last step
    to the first, a block's main branch and then its shortcut in between; returns R at the input.
    Lazy: a caller that wants one layer stops there, and nothing below it is computed.
    records: what the forward pass through `steps` kept, one per step; R: shaped as the chain's output."""
    for step, record in zip(reversed(steps), reversed(records)):
        yield step, R
        if step.branches:
            # The final ReLU passes R; the sum main + short shares it in proportion to the two terms.
            r_main, r_short = _redistribute(torch.add, list(record.parts), R)
            r_main = yield from walk(step.branches[0], record.branches[0], r_main)
            r_short = yield from walk(step.branches[1], record.branches[1], r_short)
            R = r_main + r_short
        else:
            R = _relprop(step, record.input, R)
    return R


def _output_of(steps, records, name: str) -> torch.Tensor:
    """The output the forward pass recorded for the step that ends layer `name`."""
    for step, record in zip(steps, records):
        if name in step.outputs:
            return record.output
        for branch, branch_records in zip(step.branches or (), record.branches):
            found = _output_of(branch, branch_records, name)
            if found is not None:
                return found
    return None


# ---- checking what the caller asked for -------------------------------------------------------

def _check_params(rule, first_rule, params) -> dict:
    if rule not in RULES:
        hint = "; 'zb' is for the input layer only: pass first_rule='zb'" if rule == "zb" else ""
        raise ValueError(f"unknown rule {rule!r}; rule must be one of {', '.join(map(repr, RULES))}{hint}")
    if first_rule is not None and first_rule not in FIRST_RULES:
        raise ValueError(f"unknown first_rule {first_rule!r}; it must be None (same as rule) or one of "
                         f"{', '.join(map(repr, FIRST_RULES))}")
    takes = {k for r in (rule, first_rule) for k in USES.get(r, ())}
    for key in params:
        if key not in DEFAULTS:
            raise ValueError(f"unknown parameter {key!r}; LRP takes eps (rule 'epsilon'), gamma ('gamma'), "
                             "alpha and beta ('alpha_beta'), bounds (first_rule 'zb')")
        if key not in takes:
            raise ValueError(f"parameter {key!r} has no effect with rule={rule!r}, first_rule={first_rule!r}; "
                             f"these take: {', '.join(sorted(takes)) or 'no parameters'}")
        if key == "bounds":
            _check_bounds(params[key])
        else:
            check_number(params[key], key, f"a finite number >= 0, e.g. {key}={DEFAULTS[key]}", lambda v: 0 <= v < math.inf)
    p = {**DEFAULTS, **params}
    if not math.isclose(p["alpha"] - p["beta"], 1.0):
        raise ValueError(f"alpha_beta needs alpha - beta = 1 and beta >= 0 (e.g. alpha=1, beta=0 or alpha=2, "
                         f"beta=1), got alpha={p['alpha']}, beta={p['beta']}")
    return p


def _check_bounds(bounds) -> None:
    """bounds = (low, high): numbers, or tensors broadcastable to x, finite, with low <= high everywhere."""
    numeric = isinstance(bounds, (tuple, list)) and all(isinstance(v, (numbers.Real, torch.Tensor, np.ndarray))
                                                        and not isinstance(v, bool) for v in bounds)
    try:
        low, high = (torch.as_tensor(v, dtype=torch.float64) for v in bounds)
        good = bool((low <= high).all()) and bool(low.isfinite().all()) and bool(high.isfinite().all())
    except (TypeError, ValueError, RuntimeError):
        good = False
    if not (numeric and good):
        raise (ValueError if numeric else TypeError)(
            f"bounds must be (low, high), the finite range of the input pixels with low <= high, numbers or tensors "
            f"that broadcast together, e.g. (0.0, 1.0); got {bounds!r:.80}")


def _check_layer(model: nn.Module, steps, layer: Layer) -> str:
    """The name of `layer`, if the chain has one relevance at its output."""
    want, module = resolve_layer(model, layer)
    places = _places(model, module)
    if places > 1:
        raise NotApplicable(f"layer {want!r} is one module that the model holds at {places} places, so it has no "
                            "single output; give each place its own module (a new nn.ReLU() each time, "
                            "copy.deepcopy for a layer with weights) or choose another layer")
    if any(want in s.hidden for s in _all_steps(steps)):
        raise NotApplicable(f"layer {want!r} has its BatchNorm folded into it, so LRP has no relevance between "
                            f"them; choose the BatchNorm after it (same channels) or a later layer")
    if sum(want in s.outputs for s in _all_steps(steps)) != 1:
        raise NotApplicable(f"layer {want!r} does not produce one tensor of the chain LRP walks "
                            "(a BasicBlock's relu runs twice); choose e.g. its bn1/bn2 or the block itself")
    return want


def _places(root: nn.Module, module: nn.Module) -> int:
    """How many places of the module tree hold `module` (named_modules() lists each module once)."""
    return (root is module) + sum(_places(child, module) for child in root._modules.values() if child is not None)


def _check_reproduces(scores: torch.Tensor, reference: torch.Tensor) -> None:
    """The chain must compute what the model computes, or its relevance would explain another function.
    The tolerance follows the dtype's precision (float16 and bfloat16 round the two ways differently)."""
    check_finite(reference, "the model's class scores", " (an overflow in the model's dtype?): use a float32 model "
                 "and x, or smaller inputs", dims=(2,), shape="(N, classes)")
    tol = max(1e-4, REPRODUCE_ULPS * torch.finfo(reference.dtype).eps)
    scale = max(1.0, reference.abs().max().item()) if reference.numel() else 1.0
    if reference.shape != scores.shape or not torch.allclose(scores, reference, rtol=tol, atol=tol / 10 * scale):
        raise Unsupported("walking the model's layers in order does not reproduce model(x); lrp supports "
                          f"models whose forward() just runs their layers in order: {SUPPORTED}")


def _relevance_at(steps, records, start: torch.Tensor, want: str | None) -> torch.Tensor:
    """R at the output of layer `want` (None: at the input), walked back from the start relevance."""
    relevances = walk(steps, records, start)
    if want is None:
        return _exhaust(relevances)
    return next(R for step, R in relevances if want in step.outputs)


def _relevance(model, x, target, layer, start, steps):
    """(relevance at the layer's output or at the input, the layer's output or None), one row per image,
    or per (image, class) pair for T classes per image (one forward pass, one walk back per class).
    LRP needs autograd, so the call leaves inference mode; the grad mode is restored on the way out."""
    want = None if layer is None else _check_layer(model, steps, layer)
    with torch.inference_mode(False), torch.enable_grad(), preserved(model):
        x = x.clone() if x.is_inference() else x  # an inference tensor cannot enter autograd
        with torch.no_grad():
            scores, records = _forward(steps, x.detach())
            reference = model(x)
        _check_reproduces(scores, reference)
        targets = check_targets(target, len(x), scores.shape[1], several=True).to(scores.device)
        columns = targets.T if targets.dim() == 2 else targets[None]
        R = torch.stack([_relevance_at(steps, records, _start_relevance(scores, column, start), want)
                         for column in columns], dim=1).flatten(0, 1)
        acts = None if want is None else pair_rows(_output_of(steps, records, want), targets)
    check_finite(R, "the relevance", f" (it overflowed in {R.dtype}): use a float32 or float64 model and x")
    return R, acts


def _exhaust(generator):
    """The return value of a generator, after all it yields."""
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value


# ---- the methods ------------------------------------------------------------------------------

def lrp(model: nn.Module, x: torch.Tensor, target: Target, rule: str = "epsilon", layer: Layer | None = None,
        first_rule: str | None = None, start: str = "logit", **params) -> torch.Tensor:
    """Layer-wise relevance propagation (Bach et al. 2015; Montavon et al. 2019): the relevance of each
    input pixel, (N, C, H, W), or with `layer` of each activation the layer outputs, (N, K, h, w).

    rule: "zero", "epsilon" (eps=0.25), "gamma" (gamma=0.25), "zplus", "alpha_beta" (alpha=1, beta=0)
    for every Conv2d/Linear; first_rule: the same choices or "zb" (bounds=(0, 1)) for the first one.
    See the rule_* functions for the formulas and where the bias goes.
    start: "logit" starts from the one-hot of the target times its logit y^c (so sum R = y^c);
    "survey" or "authors": the Relevance-CAM starts of `contrastive_start` (not times the logit).
    Works on nn.Sequential models (nested ones are opened up), torchvision ResNets with BasicBlocks and
    torchvision VGGs; BatchNorm2d is folded into the conv before it. Model mode, parameter grads and the
    grad mode are left as they were; inside torch.inference_mode() the call leaves it, as LRP needs
    autograd. An empty batch gives an empty map. A target of T classes per image (N, T) gives
    (N, T, ...) from one forward pass and one walk back per class.
    """
    model, start = check_model(model), _check_start(start)
    steps = plan(model, rule, first_rule, **params)
    return per_image(_relevance(model, check_images(x), target, layer, start, steps)[0], target)


def relevance_cam(model: nn.Module, x: torch.Tensor, target: Target, layer: Layer, start: str = "survey",
                  rule: str = "zplus", first_rule: str | None = "zb", **params) -> torch.Tensor:
    """Relevance-CAM (Lee, Kim, Park, Eo, Hwang, CVPR 2021): alpha_k = (1/Z) sum_ij R^k_ij, the spatial
    mean of the LRP relevance of the layer's channel k, and the map sum_k alpha_k A^k -- raw, with no
    ReLU (the authors' code applies none) and not normalised. -> (N, h, w), or (N, T, h, w) for T
    classes per image (N, T).

    Defaults follow the authors' code: contrastive start, z+ (alpha1beta0) through the network, z^B
    at the first conv -- which never acts here, since the relevance stops at `layer` (it would for a
    layer before the first conv). start="survey" is the survey's start (others -1/(C-1), sum 0);
    start="authors" is the code's (others -1/C).
    Two small differences from the authors' code: their z+ denominator adds the conv bias twice
    (unclipped), here b+ once; their z^B takes l, h as each image's min and max, here fixed `bounds`.
    """
    if layer is None:
        raise TypeError("layer must be the name of a conv layer (from model.named_modules()) or the module "
                        "itself: Relevance-CAM weights that layer's activations; got None")
    model, start = check_model(model), _check_start(start)
    steps = plan(model, rule, first_rule, **params)
    relevance, acts = _relevance(model, check_images(x), target, layer, start, steps)
    acts = check_feature_maps(acts, layer if isinstance(layer, str) else type(layer).__name__, "Relevance-CAM")
    return per_image(weighted_sum(relevance.mean(dim=(2, 3)), acts, relu=False), target)
