"""Layer-wise relevance propagation (LRP) and Relevance-CAM.

LRP (Bach et al. 2015; Montavon et al. 2019, "Layer-Wise Relevance Propagation: An Overview") starts
from a relevance R at the output and hands it back layer by layer, each neuron k sharing its R_k among
its inputs j in proportion to their contributions z_jk = a_j w_jk to z_k = sum_{0,j} a_j w_jk (the
bias is the contribution of a constant input a_0 = 1):

    R_j = sum_k  a_j rho(w_jk) / (eps + sum_{0,j} a_j rho(w_jk))  R_k          (the generic rule)

Conservation: sum_j R_j = sum_k R_k, exact for LRP-0 without bias; a bias or eps absorbs the rest.

Rules (`rule=`, for every Conv2d and Linear; `first_rule=` for the first one only):
  "zero"        LRP-0: rho = id, eps = 0.
  "epsilon"     LRP-eps: denominator z_k + eps * sign(z_k), sign(0) = +1 (Bach et al.). eps=0.25 by
                default, an absolute value in the units of z (Montavon et al.'s tutorial instead takes a
                fraction of the std of z, e.g. 0.1 std): pass eps= to suit the model's scale.
  "gamma"       LRP-gamma: rho(w) = w + gamma w+, and the bias likewise rho(b) = b + gamma b+ (gamma=0.25).
  "alpha_beta"  R_j = sum_k (alpha (a_j w_jk)+ / z_k+  -  beta (a_j w_jk)- / z_k-) R_k, with
                z_k+ = sum_j (a_j w_jk)+ + b_k+ and z_k- = sum_j (a_j w_jk)- + b_k-: the bias, as the
                input a_0 = 1, joins the side of its sign (as Bach et al. split it). alpha - beta = 1.
  "zplus"       alpha_beta with alpha=1, beta=0 (the z+ rule).
  "zb"          first_rule only (pixels bounded by `bounds=(low, high)`, default (0, 1)):
                R_i = sum_j (x_i w_ij - l_i w_ij+ - h_i w_ij-) / sum_i (same) R_j, without bias,
                as the formula in Montavon et al. 2019 and the Relevance-CAM authors' code.
Pooling and the residual sum are shared proportionally (LRP-0, no eps): average pooling as a linear
layer with positive weights, max pooling winner-take-all, a + b in proportion to a and b.

Every rule is one call of the "gradient trick" (Montavon et al. 2019's four-step implementation): with
z = layer(a), s = R / z held constant, c = d(z . s)/da, R_a = a * c -- so one code path serves
Conv2d and Linear, and a rule is only the choice of (inputs, weights, bias) put into z.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

from .gradients import weighted_sum
from .hooks import Layer, Target, check_images, check_scores, check_targets, preserved, resolve_layer

RULES = ("zero", "epsilon", "gamma", "zplus", "alpha_beta")
FIRST_RULES = RULES + ("zb",)
DEFAULTS = {"eps": 0.25, "gamma": 0.25, "alpha": 1.0, "beta": 0.0, "bounds": (0.0, 1.0)}
USES = {"epsilon": ("eps",), "gamma": ("gamma",), "alpha_beta": ("alpha", "beta"), "zb": ("bounds",)}

_PASS = (nn.ReLU, nn.Dropout, nn.Identity)   # relevance goes through unchanged
_LEAVES = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
           nn.Flatten) + _PASS
SUPPORTED = ("Conv2d, Linear, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, Dropout, Identity, "
             "BatchNorm2d (right after a Conv2d), nn.Sequential, torchvision ResNet with BasicBlocks")


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
    scores = check_scores(scores)
    n, c = scores.shape
    if kind not in ("survey", "authors"):
        raise ValueError(f"kind must be 'survey' (others -1/(C-1), sum 0) or 'authors' (others -1/C, "
                         f"sum 1/C), got {kind!r}")
    if c < 2:
        raise ValueError("a contrastive start needs at least 2 classes")
    targets = check_targets(target, n, c).to(scores.device)
    other = -1.0 / (c - 1 if kind == "survey" else c)
    start = torch.full_like(scores, other)
    start[torch.arange(n, device=scores.device), targets] = 1.0
    return start


def _start(scores: torch.Tensor, targets: torch.Tensor, contrastive) -> torch.Tensor:
    if contrastive is False:  # one-hot times the target's logit: the relevance to explain is y^c itself
        start = torch.zeros_like(scores)
        idx = torch.arange(len(scores), device=scores.device)
        start[idx, targets] = scores[idx, targets]
        return start
    return contrastive_start(scores, targets, "survey" if contrastive is True else contrastive)


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


def _linear_rule(layer, w, b, a, R, rule, p):
    """R at the input of z = layer(a, w) + b (a Conv2d or Linear, BatchNorm folded into w, b).

    Each rule is the list of (input, weight) pairs whose contributions form z, plus the bias term.
    """
    def share(pairs, bias, eps=0.0):
        forward = lambda *xs: sum(layer(x, v) for x, (_, v) in zip(xs, pairs)) + bias
        return sum(_redistribute(forward, [x for x, _ in pairs], R, eps))

    if rule == "zero":
        return share([(a, w)], b)
    if rule == "epsilon":
        return share([(a, w)], b, p["eps"])
    if rule == "gamma":
        g = p["gamma"]
        return share([(a, w + g * w.clamp(min=0))], b + g * b.clamp(min=0))
    wp, wn = w.clamp(min=0), w.clamp(max=0)
    if rule in ("zplus", "alpha_beta"):
        alpha, beta = (1.0, 0.0) if rule == "zplus" else (p["alpha"], p["beta"])
        ap, an = a.clamp(min=0), a.clamp(max=0)
        # (a w)+ = a+ w+ + a- w-: the positive contributions, whatever the sign of the input.
        relevance = alpha * share([(ap, wp), (an, wn)], b.clamp(min=0))
        if beta:
            relevance = relevance - beta * share([(ap, wn), (an, wp)], b.clamp(max=0))
        return relevance
    if rule == "zb":
        low, high = (torch.as_tensor(v, dtype=a.dtype, device=a.device).expand_as(a) for v in p["bounds"])
        # z_j = sum_i x_i w_ij - l_i w_ij+ - h_i w_ij-: the bounds enter as two more "inputs".
        return share([(a, w), (low, -wp), (high, -wn)], 0.0)
    raise AssertionError(rule)


# ---- the walk: the model as a chain of steps --------------------------------------------------

@dataclass
class _Step:
    """One layer of the chain. `outputs`: the names whose output is this step's output (the module
    itself, Sequentials it ends, a BatchNorm folded into it); `hidden`: names inside it with no output
    of their own here (a Conv2d whose BatchNorm was folded in)."""
    name: str
    module: nn.Module
    outputs: list[str]
    hidden: list[str] = field(default_factory=list)
    bn: nn.BatchNorm2d | None = None
    branches: tuple[list, list] | None = None   # a BasicBlock: (main, shortcut)
    first: bool = False                         # the input layer, which gets first_rule
    input: torch.Tensor | None = None           # filled by the forward pass
    parts: tuple | None = None                  # a block's (main, shortcut) outputs


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _flatten(module: nn.Module, name: str) -> list[_Step]:
    """The layers `module` runs, in forward order; nested Sequentials are opened up."""
    if isinstance(module, nn.Sequential):
        steps = [s for child, m in module.named_children() for s in _flatten(m, _join(name, child))]
    elif isinstance(module, ResNet):  # torchvision's forward: stem, layer1..4, avgpool, flatten, fc
        stem = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool")
        steps = [s for child in stem for s in _flatten(getattr(module, child), _join(name, child))]
        steps += [_Step("torch.flatten in ResNet.forward", nn.Flatten(), [])]
        steps += _flatten(module.fc, _join(name, "fc"))
    elif type(module) is BasicBlock:  # a subclass may change forward(); the score check would catch it
        main = [_Step(_join(name, n), getattr(module, n), [_join(name, n)])
                for n in ("conv1", "bn1", "relu", "conv2", "bn2")]
        main[2].outputs = []  # block.relu also runs after the sum: its output is ambiguous
        short = [] if module.downsample is None else _fold(_flatten(module.downsample, _join(name, "downsample")))
        return [_Step(name, module, [name], branches=(_fold(main), short))]
    elif isinstance(module, _LEAVES):
        return [_Step(name, module, [name])]
    else:
        kind = ("nn." if type(module).__module__.startswith("torch.nn") else "") + type(module).__name__
        where = repr(name) if name else "the top (the model itself)"
        raise NotImplementedError(f"lrp does not support {kind} at {where}; supported: {SUPPORTED}")
    if steps:
        steps[-1].outputs.append(name)
    return steps


def _fold(steps: list[_Step]) -> list[_Step]:
    """Fold each BatchNorm2d into the Conv2d before it: in eval mode BN is an affine map per channel,
    so conv -> BN is one conv with weight w*s and bias (b - mean)*s + beta, s = gamma/sqrt(var + eps)."""
    out: list[_Step] = []
    for step in steps:
        if isinstance(step.module, nn.BatchNorm2d):
            prev = out[-1] if out else None
            if prev is None or not isinstance(prev.module, nn.Conv2d) or prev.bn is not None:
                where = f"after {prev.name!r}" if prev else "at the start"
                raise NotImplementedError(f"lrp folds BatchNorm2d into the Conv2d right before it; the "
                                          f"BatchNorm2d at {step.name!r} comes {where}")
            if step.module.running_mean is None:
                raise NotImplementedError(f"BatchNorm2d at {step.name!r} keeps no running statistics "
                                          "(track_running_stats=False), so it cannot be folded into a conv")
            prev.bn, prev.hidden, prev.outputs = step.module, prev.hidden + prev.outputs, step.outputs
        else:
            out.append(step)
    return out


def _affine(step: _Step):
    """(layer(x, w) without bias, w, b broadcastable to the output) of a Conv2d/Linear step, BN folded."""
    m = step.module
    w = m.weight.detach()
    b = m.bias.detach() if m.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype, device=w.device)
    if step.bn is not None:
        bn = step.bn
        gamma = bn.weight.detach() if bn.weight is not None else torch.ones_like(bn.running_var)
        beta = bn.bias.detach() if bn.bias is not None else torch.zeros_like(bn.running_mean)
        scale = gamma / torch.sqrt(bn.running_var + bn.eps)
        w, b = w * scale.view(-1, 1, 1, 1), (b - bn.running_mean) * scale + beta
    if isinstance(m, nn.Conv2d):
        return (lambda x, v: m._conv_forward(x, v, None)), w, b.view(1, -1, 1, 1)
    return (lambda x, v: F.linear(x, v)), w, b


def _forward(steps: list[_Step], a: torch.Tensor, want: str | None, acts: list) -> torch.Tensor:
    """Run the chain, keeping each step's input (and the layer `want`'s output in `acts`)."""
    for step in steps:
        step.input = a
        if step.branches:
            main, short = (_forward(branch, a, want, acts) for branch in step.branches)
            step.parts = (main, short)
            a = torch.relu(main + short)
        elif isinstance(step.module, (nn.Conv2d, nn.Linear)):
            layer, w, b = _affine(step)
            a = layer(a, w) + b
        elif isinstance(step.module, nn.ReLU):
            a = torch.relu(a)  # never in place: the input is kept
        else:
            a = step.module(a)
        if want is not None and want in step.outputs:
            acts.append(a)
    return a


def _backward(steps: list[_Step], R: torch.Tensor, rules: tuple[str, str], p: dict,
              want: str | None, found: list) -> torch.Tensor:
    """Hand R from the chain's output back to its input; stop once the layer `want` is reached."""
    for step in reversed(steps):
        if want is not None and want in step.outputs:
            found.append(R)
            return R
        R = _relprop(step, R, rules, p, want, found)
        if found:
            return R
    return R


def _relprop(step: _Step, R, rules, p, want, found) -> torch.Tensor:
    """R at one step's input, from R at its output."""
    m, a = step.module, step.input
    if step.branches:
        main, short = step.parts
        # The final ReLU passes R; the sum main + short shares it in proportion to the two terms.
        r_main, r_short = _redistribute(torch.add, [main, short], R)
        r_main = _backward(step.branches[0], r_main, rules, p, want, found)
        if found:  # the layer sits in the main branch
            return found[0]
        r_short = _backward(step.branches[1], r_short, rules, p, want, found)
        return found[0] if found else r_main + r_short
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        layer, w, b = _affine(step)
        return _linear_rule(layer, w, b, a, R, rules[1] if step.first else rules[0], p)
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


def _plan(model: nn.Module) -> list[_Step]:
    steps = _fold(_flatten(model, ""))
    first = next((s for s in steps if isinstance(s.module, (nn.Conv2d, nn.Linear))), None)
    if first is not None:
        first.first = True
    return steps


def _all_steps(steps):
    for s in steps:
        yield s
        for branch in s.branches or ():
            yield from _all_steps(branch)


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
    p = {**DEFAULTS, **params}
    if p["eps"] < 0 or p["gamma"] < 0:
        raise ValueError(f"eps and gamma must be >= 0, got eps={p['eps']}, gamma={p['gamma']}")
    if not math.isclose(p["alpha"] - p["beta"], 1.0) or p["beta"] < 0:
        raise ValueError(f"alpha_beta needs alpha - beta = 1 and beta >= 0 (e.g. alpha=1, beta=0 or alpha=2, "
                         f"beta=1), got alpha={p['alpha']}, beta={p['beta']}")
    if len(p["bounds"]) != 2:
        raise ValueError(f"bounds must be (low, high), the range of the input pixels, got {p['bounds']!r}")
    return p


def _relevance(model, x, target, layer, rule, first_rule, contrastive, params):
    """(relevance at the layer's output or the input, the layer's output or None, scores)."""
    x = check_images(x)
    p = _check_params(rule, first_rule, params)
    if not (contrastive is False or contrastive is True or contrastive in ("survey", "authors")):
        raise ValueError(f"contrastive must be False (one-hot times the logit), True or 'survey' (others "
                         f"-1/(C-1)) or 'authors' (others -1/C), got {contrastive!r}")
    steps = _plan(model)
    want = None
    if layer is not None:
        want, _ = resolve_layer(model, layer)
        if any(want in s.hidden for s in _all_steps(steps)):
            raise ValueError(f"layer {want!r} has its BatchNorm folded into it, so LRP has no relevance between "
                             f"them; choose the BatchNorm after it (same channels) or a later layer")
        if sum(want in s.outputs for s in _all_steps(steps)) != 1:
            raise ValueError(f"layer {want!r} does not produce one tensor of the chain LRP walks "
                             "(a BasicBlock's relu runs twice); choose e.g. its bn1/bn2 or the block itself")
    acts: list[torch.Tensor] = []
    found: list[torch.Tensor] = []
    with preserved(model):
        with torch.no_grad():
            scores = check_scores(_forward(steps, x.detach(), want, acts))
            reference = model(x)
        if reference.shape != scores.shape or not torch.allclose(
                scores, reference, rtol=1e-4, atol=1e-5 * max(1.0, reference.abs().max().item())):
            raise NotImplementedError("walking the model's layers in order does not reproduce model(x); lrp supports "
                                      f"models whose forward() just runs their layers in order: {SUPPORTED}")
        targets = check_targets(target, len(x), scores.shape[1]).to(scores.device)
        R = _backward(steps, _start(scores, targets, contrastive), (rule, first_rule or rule), p, want, found)
    return (found[0] if want is not None else R), (acts[0] if acts else None), scores


# ---- the methods ------------------------------------------------------------------------------

def lrp(model: nn.Module, x: torch.Tensor, target: Target, rule: str = "epsilon", layer: Layer | None = None,
        first_rule: str | None = None, contrastive=False, **params) -> torch.Tensor:
    """Layer-wise relevance propagation (Bach et al. 2015; Montavon et al. 2019): the relevance of each
    input pixel, (N, C, H, W), or with `layer` of each activation the layer outputs, (N, K, h, w).

    rule: "zero", "epsilon" (eps=0.25), "gamma" (gamma=0.25), "zplus", "alpha_beta" (alpha=1, beta=0)
    for every Conv2d/Linear; first_rule: the same choices or "zb" (bounds=(0, 1)) for the first one.
    See the module docstring for the formulas and where the bias goes.
    contrastive: False starts from the one-hot of the target times its logit y^c (so sum R = y^c);
    True / "survey" or "authors": the Relevance-CAM starts of `contrastive_start` (not times the logit).
    Works on nn.Sequential models (nested ones are opened up) and torchvision ResNets with BasicBlocks;
    BatchNorm2d is folded into the conv before it. Model mode and parameter grads are left as they were.
    """
    return _relevance(model, x, target, layer, rule, first_rule, contrastive, params)[0]


def relevance_cam(model: nn.Module, x: torch.Tensor, target: Target, layer: Layer, contrastive=True,
                  rule: str = "zplus", first_rule: str | None = "zb", **params) -> torch.Tensor:
    """Relevance-CAM (Lee, Kim, Park, Eo, Hwang, CVPR 2021): alpha_k = (1/Z) sum_ij R^k_ij, the spatial
    mean of the LRP relevance of the layer's channel k, and the map sum_k alpha_k A^k -- raw, with no
    ReLU (the authors' code applies none) and not normalised. -> (N, h, w).

    Defaults follow the authors' code: contrastive start, z+ (alpha1beta0) through the network, z^B
    at the first conv -- which never acts here, since the relevance stops at `layer` (it would for a
    layer before the first conv). contrastive=True is the survey's start (others -1/(C-1), sum 0);
    contrastive="authors" is the code's (others -1/C). Two small differences from the authors' code:
    their z+ denominator adds the conv bias twice (unclipped), here b+ once; their z^B takes l, h as
    each image's min and max, here fixed `bounds`.
    """
    relevance, acts, _ = _relevance(model, x, target, layer, rule, first_rule, contrastive, params)
    if acts.dim() != 4:
        raise ValueError(f"Relevance-CAM needs a layer with (N, K, h, w) output; {layer!r} gives "
                         f"{tuple(acts.shape)}; choose a conv block")
    return weighted_sum(relevance.mean(dim=(2, 3)), acts, relu=False)
