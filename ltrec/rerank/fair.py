"""The FA*IR ranked group fairness test (Zehlike et al. 2017), computed exactly.

Zehlike, Bonchi, Castillo, Hajian, Megahed, Baeza-Yates, "FA*IR: A Fair Top-k Ranking
Algorithm", CIKM 2017. A prefix of length k with tau protected items *fairly represents* the
protected group (here: tail items) with minimum proportion p at significance alpha when
F(tau; k, p) > alpha, F the binomial CDF (Definition 3.1). The minimum count is therefore

    m(k) = min { tau : F(tau; k, p) > alpha }

and a ranking passes the ranked group fairness test when every prefix k = 1..K holds at least
m(k) protected items. The table is computed in exact integer arithmetic from the decimal values
of p and alpha (p = a/b, alpha = c/d: d * sum_{i<=tau} C(k,i) a^i (b-a)^(k-i) > c * b^k), so
boundary cases are decided exactly, not by floating-point luck.

Testing K prefixes inflates the chance of failing a fair ranking above alpha; the paper's model
adjustment (its §4.2) lowers alpha to alpha_c so that a ranking drawn with Bernoulli(p)
protected items fails the whole test with probability at most alpha. :func:`adjusted_alpha`
finds the largest such alpha_c by bisection, the failure probability by exact dynamic
programming over the protected count.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from math import comb

import numpy as np


def _exact(x: float) -> Fraction:
    # str() gives the shortest decimal that round-trips: the value the user typed.
    return Fraction(str(x))


@lru_cache(maxsize=256)
def m_table(k: int, p: float, alpha: float) -> tuple[int, ...]:
    """(m(1), ..., m(k)): the minimum tail count of each prefix (see the module docstring).

    Args:
        k: list length (>= 1).
        p: minimum proportion of the protected group, in [0, 1].
        alpha: significance, in (0, 1).
    """
    if k < 1:
        return ()
    pf, af = _exact(p), _exact(alpha)
    a, b = pf.numerator, pf.denominator
    c, d = af.numerator, af.denominator
    table = []
    m_prev = 0
    for n in range(1, k + 1):
        bound = c * b**n
        # m(n) is non-decreasing in n and grows by at most one per position, so the search
        # starts at m(n-1).
        total = sum(comb(n, i) * a**i * (b - a) ** (n - i) for i in range(m_prev)) * d
        tau = m_prev
        while tau <= n:
            total += comb(n, tau) * a**tau * (b - a) ** (n - tau) * d
            if total > bound:
                break
            tau += 1
        table.append(min(tau, n))
        m_prev = table[-1]
    return tuple(table)


def fail_probability(table: tuple[int, ...], p: float) -> float:
    """P(a ranking with Bernoulli(p) protected items fails some prefix of ``table``).

    Dynamic programming over the number of protected items seen so far; a path is dropped as
    soon as its count falls below m(k).
    """
    dist = np.zeros(len(table) + 2)
    dist[0] = 1.0
    for need in table:
        nxt = dist * (1 - p)
        nxt[1:] += dist[:-1] * p
        nxt[:need] = 0.0
        dist = nxt
    return float(max(0.0, 1.0 - dist.sum()))


@lru_cache(maxsize=256)
def adjusted_alpha(k: int, p: float, alpha: float, iters: int = 40) -> float:
    """The largest alpha_c <= alpha whose table fails a fair ranking with probability <= alpha.

    Zehlike et al. 2017, §4.2 (model adjustment of the significance for multiple tests).
    """
    if fail_probability(m_table(k, p, alpha), p) <= alpha:
        return alpha
    lo, hi = 0.0, alpha  # fail(lo) <= alpha < fail(hi); the failure grows with alpha_c
    for _ in range(iters):
        mid = (lo + hi) / 2
        if mid <= 0:
            break
        if fail_probability(m_table(k, p, float(f"{mid:.12g}")), p) <= alpha:
            lo = mid
        else:
            hi = mid
    return float(f"{lo:.12g}") if lo > 0 else 0.0


def min_tail_counts(k: int, p: float, alpha: float, adjust: bool = False) -> tuple[int, ...]:
    """The m(k) table FA*IR enforces, with the alpha adjustment when ``adjust``."""
    if p <= 0:
        return (0,) * k
    if adjust:
        ac = adjusted_alpha(k, p, alpha)
        if ac <= 0:
            return (0,) * k
        return m_table(k, p, ac)
    return m_table(k, p, alpha)
