"""The toy network of notebooks 06 and 07, in exact fractions (derived in notebook 06, section 4).

A one-channel image of small integers, a 2x2 convolution (no padding, no bias) to one channel per kernel,
a ReLU, a 2x2 max-pool, global average pooling (GAP) and a linear layer without bias::

    conv^k_uv = sum_pq x_{u+p, v+q} K^k_pq,   A = ReLU(conv),   P^k_st = max of A^k over window (s, t),
    g_k = (1/Z) sum_st P^k_st,   y_c = sum_k V_ck g_k.

``toy_lrp`` hands a relevance at the output back layer by layer with the propagation rule of document 001
and Montavon et al. (2019, sec. 10.2.1), R_j = sum_k z_jk / (sum_j' z_j'k) R_k: LRP-0 takes z_jk = a_j w_jk,
z+ (alpha_1 beta_0, sec. 10.2) only its positive part. GAP shares in proportion to the pooled values (its
weights 1/Z are positive), the max-pool gives each window's relevance to its winner (winner takes all, as in
the Relevance-CAM authors' code), the ReLU passes it on. Every number is a ``Fraction``: without a bias each
layer hands down exactly what it received, so conservation, f(x) = sum_p R_p, holds exactly.
Notebook 07 builds Relevance-CAM on the relevance at A. ``toy_model`` is the same network in torch
(float64) for the checks against ``minicam.lrp``.
"""
from __future__ import annotations

from collections import OrderedDict
from fractions import Fraction

import torch
from torch import nn

# Notebook helpers, imported by name by the notebooks that use them; they take its clean values, and
# nothing here is an edge that validates (tests/test_bad_inputs.py).
__all__: list[str] = []

IMAGE = [[1, 0, 2, 1, 0],
         [0, 3, 1, 0, 2],
         [2, 1, 0, 3, 1],
         [1, 0, 2, 1, 0],
         [0, 1, 1, 0, 3]]
KERNELS = [[[1, -1], [0, 1]],        # the 2x2 kernel of channel 1
           [[-1, 2], [1, -1]]]       # of channel 2
WEIGHTS = [[1, 2],                   # V: class 1 from channels 1, 2
           [2, -1]]                  # class 2


def toy_forward(img, K, V) -> dict:
    """The forward pass in fractions. img: (n+1) x (n+1) numbers, K: one 2x2 kernel per channel, V: classes x
    channels. -> dict of lists: conv and A (channels x n x n), pool (channels x n/2 x n/2), winner (the
    (row, col) in A of each window's maximum), gap (one per channel), y (one per class).
    Raises ValueError if a max-pool window has two maxima: winner takes all needs one winner."""
    n = len(img) - 1
    conv = [[[sum(Fraction(img[u + p][v + q]) * k[p][q] for p in range(2) for q in range(2))
              for v in range(n)] for u in range(n)] for k in K]
    A = [[[max(z, Fraction(0)) for z in row] for row in ch] for ch in conv]
    pool, winner = [], []
    for ch in A:
        windows = [[[(ch[2 * s + a][2 * t + b], (2 * s + a, 2 * t + b)) for a in range(2) for b in range(2)]
                    for t in range(n // 2)] for s in range(n // 2)]
        if any([value for value, _ in w].count(max(w)[0]) > 1 for row in windows for w in row):
            raise ValueError("a max-pool window has two maxima: winner takes all needs one winner")
        pool.append([[max(w)[0] for w in row] for row in windows])
        winner.append([[max(w)[1] for w in row] for row in windows])
    gap = [sum(sum(row) for row in ch) / len(ch) ** 2 for ch in pool]
    y = [sum(V[c][k] * gap[k] for k in range(len(K))) for c in range(len(V))]
    return dict(conv=conv, A=A, pool=pool, winner=winner, gap=gap, y=y)


def share_fractions(contributions, R) -> list:
    """R shared in proportion to the contributions: c_j / (sum_j' c_j') * R; a zero total hands nothing down."""
    total_ = sum(contributions)
    return [Fraction(0) if total_ == 0 else c / total_ * R for c in contributions]


def toy_lrp(img, K, V, R_top, rule: str) -> dict:
    """LRP through the toy, in fractions. R_top: the relevance at the output, one per class (one-hot times the
    logit for plain LRP, a contrastive start for Relevance-CAM); rule: "zero" (LRP-0) or "zplus" (z+).
    -> dict: the relevance at the GAP output (gap), the pool output (pool), A (= the conv output) and the image."""
    if rule not in ("zero", "zplus"):
        raise ValueError(f"rule must be 'zero' or 'zplus', got {rule!r}")
    fw = toy_forward(img, K, V)
    keep = (lambda z: z) if rule == "zero" else (lambda z: max(z, Fraction(0)))     # z_jk, or its positive part
    channels, n, m = range(len(K)), len(fw["A"][0]), len(fw["pool"][0])
    R_gap = [Fraction(0) for _ in channels]
    for c, R_c in enumerate(R_top):                                             # linear layer: z_kc = g_k V_ck
        for k, r in enumerate(share_fractions([keep(fw["gap"][k] * V[c][k]) for k in channels], R_c)):
            R_gap[k] += r
    R_pool = [[[Fraction(0) if fw["gap"][k] == 0 else fw["pool"][k][s][t] / (m * m * fw["gap"][k]) * R_gap[k]
                for t in range(m)] for s in range(m)] for k in channels]          # GAP: z = P^k_st / Z
    R_A = [[[Fraction(0)] * n for _ in range(n)] for _ in channels]
    for k in channels:                                                          # max-pool: winner takes all
        for s in range(m):
            for t in range(m):
                u, v = fw["winner"][k][s][t]
                R_A[k][u][v] = R_pool[k][s][t]
    R_img = [[Fraction(0)] * (n + 1) for _ in range(n + 1)]
    for k in channels:                                                          # convolution: window by window
        for u in range(n):
            for v in range(n):
                window = [(u + p, v + q) for p in range(2) for q in range(2)]
                contributions = [keep(Fraction(img[i][j]) * K[k][i - u][j - v]) for i, j in window]
                for (i, j), r in zip(window, share_fractions(contributions, R_A[k][u][v])):
                    R_img[i][j] += r
    return dict(gap=R_gap, pool=R_pool, A=R_A, img=R_img)


def toy_model(K, V) -> nn.Sequential:
    """The toy as a float64 torch model (conv, relu, pool, gap, flatten, fc), for minicam.lrp and relevance_cam."""
    model = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, len(K), 2, bias=False), relu=nn.ReLU(), pool=nn.MaxPool2d(2),
                                      gap=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
                                      fc=nn.Linear(len(K), len(V), bias=False))).double().eval()
    with torch.no_grad():
        model.conv.weight.copy_(torch.tensor(K, dtype=torch.float64)[:, None])
        model.fc.weight.copy_(torch.tensor(V, dtype=torch.float64))
    return model


def total(t):
    """The sum of a nested list of numbers (exact for fractions)."""
    return sum(total(v) for v in t) if isinstance(t, list) else t


def show_grid(t) -> str:
    """A 2-D list of numbers on one line, rows separated by |."""
    return " | ".join(" ".join(f"{str(v):>6}" for v in row) for row in t)
