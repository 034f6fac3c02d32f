"""Which tail re-ranking gives more tail than the linear boost at <= 5% NDCG@10 loss? (issue 18)

Validation split only, built by the tuner's own machinery (:func:`ltrec.app.tune.validation_split`,
the run's model refitted on the fit part, the tuner's seeded sample of 1000 validation users,
pools through the one pipeline). For each idea the strength is bisected (14 steps) to the
strongest setting within 5% NDCG@10 loss against the base order, and its APLT@10 is printed
beside the linear boost's on the same pools:

* linear: rel + beta * tail (the floor), and ``tail_select``: the same K items in base order;
* (c) a continuous popularity penalty: log rel - gamma * log(1 + pop);
* (a) a tail-relevance term: rel + beta * tail * aff (aff = the user's co-occurrence affinity to
  the tail item, the tail source's own score, normalised per user), and a fused tail relevance
  (each pool tail item's rel blended with the rel the base gives the pool tail item of the same
  affinity rank);
* (b) tail candidates (200, co-occurrence) rank-calibrated onto the base pool's *top* scores;
* hit rates by pool rank, head vs tail, and of the tail ordered by the base vs by affinity
  (what limits every idea).

``--part scorers``: tail-specific scorers. Each candidate scorer ranks every eligible tail item
(tail, not seen unless the domain repeats) among the tail alone: the base model's own scores,
tail popularity, co-occurrence cosine, RP3beta's walk to the tail columns with beta 0/0.5/1,
the history's share of the item's category, the text profile (``--text``, MiniLM), the user's
own purchases (repeat domains), rank fusions with the base; hit@1/3/5, P@10 and recall@10
among tail targets, beside the hit rate of the head items a tail slot displaces. Then the
strategy a better scorer would enable: the linear boost's list keeps its head items and its
tail slots, and the slots are filled in order by the scorer's best tail items (from the whole
tail: an upper bound for a candidate source), strength bisected to the 5% bound. Partial
oracles (validation targets first for a seeded 2/5/10/100% of users) are ceilings, not
strategies: they say how much better the tail ranking would have to be for 1.5x.

    .venv/bin/python benchmarks/explore_tail_relevance.py [--dataset demo|cc0] \
        [--part all|strategies|scorers] [--text]

Uses a private temporary data directory; prints a table (no result file).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

K = 10
MAX_LOSS = 0.05


def validation_pools(name: str, model_name: str, users: int) -> dict:
    from ltrec.app import tune as T
    from ltrec.app.pipeline import RecSession
    from ltrec.models.base import make_model
    from ltrec.models.data import InteractionData, load_catalogue
    from ltrec.models.train import train
    from ltrec.rerank.adapters import context_from_data
    from ltrec.rerank.pipeline import parse_config
    from ltrec.store import connect

    params = {"precision": "float32"} if model_name == "ease" else {}
    run_id = train(name, model_name, params, n_boot=0).run_id
    session = T._open(name, run_id, None, False)
    val = T.validation_split(session.data.split)
    con = connect(name, None)
    try:
        items_df, users_df = load_catalogue(con)
    finally:
        con.close()
    fit = InteractionData.from_split(
        val, items_df, users_df, repeat_domain=session.data.repeat_domain
    )
    cfg = session.model.config.model_dump(mode="json")
    model = make_model(model_name, cfg)
    model.fit(fit)
    ctx = context_from_data(fit, items=items_df)
    fs = RecSession.from_parts(model, fit, ctx, dataset=name)
    u, test = T._sample(*T._targets(fit), users, int(cfg.get("seed", 0) or 0))
    pools = {}
    for tp in (0, 200):
        c = parse_config(
            {"strategy": "none", "pool": 200, "tail_pool": tp, "tail_source": "cooccurrence"}
        )
        pools[tp] = fs.with_config(c).pools(u)
    # the co-occurrence tail source's own score: history @ Xn^T @ Xn (cosine of 0/1 columns)
    b = (fit.matrix > 0).astype(np.float64).tocsc()
    norms = np.sqrt(np.asarray(b.multiply(b).sum(axis=0)).ravel())
    norms[norms == 0] = 1.0
    bn = b.multiply(1.0 / norms).tocsr()
    h = (fit.matrix[u] > 0).astype(np.float64)
    aff = np.asarray((h @ bn.T @ bn).todense())
    return {
        "model": model,
        "fit": fit,
        "repeat": bool(session.data.repeat_domain),
        "items_df": items_df,
        "name": name,
        "users": u,
        "test": test,
        "pools": pools,
        "tail": ctx.tail,
        "pop": ctx.popularity.astype(float),
        "item_pop": fit.item_pop,
        "seen": fit.matrix[u],
        "aff": aff,
    }


def minmax(s: np.ndarray) -> np.ndarray:
    v = np.isfinite(s)
    lo = np.where(v, s, np.inf).min(1, keepdims=True)
    hi = np.where(v, s, -np.inf).max(1, keepdims=True)
    span = hi - lo
    span[span <= 1e-12] = 1.0
    return np.where(v, (s - lo) / span, -np.inf)


def strongest(
    score: Callable[[float], dict[str, float]], bn: float, hi: float, steps: int
) -> tuple[float, float, float, float] | None:
    """The largest strength in [0, hi] whose NDCG@K stays within MAX_LOSS of ``bn`` (the
    base's), by bisection: (strength, loss, APLT@K, tail recall@K), or None when none does."""
    lo, best = 0.0, None
    for _ in range(steps):
        mid = (lo + hi) / 2
        r = score(mid)
        loss = 1 - r[f"ndcg@{K}"] / bn
        if loss <= MAX_LOSS:
            lo, best = mid, (mid, loss, r[f"aplt@{K}"], r[f"tail_recall@{K}"])
        else:
            hi = mid
    return best


def explore(d: dict) -> None:
    from ltrec.rerank.sweep import evaluation_scorer

    tail = d["tail"]
    scorer = evaluation_scorer(
        d["test"], item_pop=d["item_pop"], k=K, tail_mask=tail, seen=d["seen"]
    )

    def top(items, final):
        o = np.argsort(-final, axis=1, kind="stable")[:, :K]
        return np.take_along_axis(items, o, 1)

    def base_order(items, final):  # the top K by `final`, listed in pool (base) order
        o = np.sort(np.argsort(-final, axis=1, kind="stable")[:, :K], axis=1)
        return np.take_along_axis(items, o, 1)

    items0, s0 = d["pools"][0]
    base = top(items0, s0)
    b = scorer(base, base)
    bn = b[f"ndcg@{K}"]
    print(f"base: NDCG@10 {bn:.4f}  APLT@10 {b[f'aplt@{K}']:.4f}  ({len(d['users'])} users)")

    def frontier(name, fn, hi, ref=None):
        best = strongest(lambda x: scorer(fn(x), base), bn, hi, steps=14)
        if best is None:
            print(f"  {name:58s} none within the bound")
            return None
        ratio = f"  x{best[2] / ref:.3f}" if ref else ""
        print(
            f"  {name:58s} strength {best[0]:.4g}  loss {best[1]:.4f}  APLT {best[2]:.4f}  "
            f"tail recall {best[3]:.4f}{ratio}"
        )
        return best[2]

    items, s = items0, np.where(items0 >= 0, s0, -np.inf)
    rel = minmax(s)
    t = tail[np.maximum(items, 0)] & (items >= 0)
    lin = frontier("linear: rel + beta tail", lambda x: top(items, rel + x * t), 2.0)
    frontier(
        "tail_select: same items, base order", lambda x: base_order(items, rel + x * t), 2, lin
    )
    logp = np.log1p(d["pop"][np.maximum(items, 0)])
    lr = np.log(np.maximum(rel, 1e-9))
    frontier("(c) log rel - gamma log(1+pop)", lambda g: top(items, lr - g * logp), 5.0, lin)
    a = np.where(items >= 0, np.take_along_axis(d["aff"], np.maximum(items, 0), 1), 0.0)
    amax = np.where(t, a, -np.inf).max(1, keepdims=True)
    amax[~np.isfinite(amax) | (amax <= 0)] = 1.0
    an = np.where(t, a / amax, 0.0)
    frontier("(a) rel + beta tail * affinity", lambda x: top(items, rel + x * an), 5.0, lin)
    frontier(
        "(a) rel + beta tail * sqrt(affinity)",
        lambda x: top(items, rel + x * np.sqrt(np.maximum(an, 0))),
        5.0,
        lin,
    )
    cal = rel.copy()
    for u in range(items.shape[0]):
        m = np.flatnonzero(t[u])
        if m.size:
            cal[u, m[np.argsort(-a[u, m], kind="stable")]] = np.sort(rel[u, m])[::-1]
    for w in (0.25, 0.5, 1.0):
        fused = np.where(t, (1 - w) * rel + w * cal, rel)
        frontier(
            f"(a) fused tail relevance w={w} + boost",
            lambda x, f=fused: top(items, f + x * t),
            2.0,
            lin,
        )
        frontier(
            f"(a) fused tail relevance w={w} + boost, base order",
            lambda x, f=fused: base_order(items, f + x * t),
            2.0,
            lin,
        )
    # (b) the 200 co-occurrence tail candidates, rank-calibrated onto the pool's top scores
    items2, s2 = d["pools"][200]
    s2 = np.where(items2 >= 0, s2, -np.inf)
    rel2 = minmax(s2)
    added = np.zeros(items2.shape, dtype=bool)
    added[:, 200:] = items2[:, 200:] >= 0
    top_rel = np.sort(np.where(np.isfinite(rel2[:, :200]), rel2[:, :200], -np.inf), axis=1)[:, ::-1]
    relb = rel2.copy()
    for u in range(items2.shape[0]):
        m = np.flatnonzero(added[u])
        relb[u, m] = top_rel[u, : m.size] if m.size <= 200 else top_rel[u, 0]
    t2 = tail[np.maximum(items2, 0)] & (items2 >= 0)
    frontier(
        "(b) +200 tail candidates at the top scores, boost",
        lambda x: top(items2, relb + x * t2),
        2,
        lin,
    )
    frontier(
        "(b) +200 tail candidates at the top scores, base-rel order",
        lambda x: base_order(items2, relb + x * t2),
        2,
        lin,
    )
    # what limits every idea: hit rates by pool rank, head vs tail
    hit = np.zeros(items2.shape, dtype=bool)
    for u in range(items2.shape[0]):
        hit[u] = np.isin(items2[u], d["test"][u]) & (items2[u] >= 0)
    rank = np.broadcast_to(np.arange(items2.shape[1]), items2.shape)
    print("  hit rate by pool rank (head | tail):")
    for lo, hi in ((0, 5), (5, 10), (10, 20), (20, 40), (40, 80), (80, 200), (200, 400)):
        m = (rank >= lo) & (rank < hi) & (items2 >= 0)
        hh, ht = m & ~t2, m & t2
        fh = f"{hit[hh].mean():.4f}" if hh.any() else "  -   "
        ft = f"{hit[ht].mean():.4f}" if ht.any() else "  -   "
        print(f"    ranks {lo + 1:3d}-{hi:3d}: {fh} | {ft}  (n {int(hh.sum())} | {int(ht.sum())})")


def _ranks(s: np.ndarray) -> np.ndarray:
    """Per-row rank scores in [0, 1] (1: best), for rank fusion of scorers on other scales."""
    o = np.argsort(np.argsort(-s, axis=1, kind="stable"), axis=1)
    return 1.0 - o / max(1, s.shape[1] - 1)


def tail_scorers(d: dict, text: bool = False) -> dict[str, np.ndarray]:
    """``[users, tail items]`` scores of each candidate tail scorer (higher: better)."""
    fit, u, tail = d["fit"], d["users"], d["tail"]
    ti = np.flatnonzero(tail)
    x = (fit.matrix > 0).astype(np.float64).tocsr()
    h = x[u]
    out = {"base model": np.asarray(d["model"].score(u, ti), dtype=np.float64).reshape(len(u), -1)}
    out["tail popularity"] = np.broadcast_to(
        d["item_pop"][ti].astype(float), out["base model"].shape
    )
    out["co-occurrence cosine"] = d["aff"][:, ti]
    # RP3beta's walk arriving at tail columns only, divided by d_j^beta (no pruning)
    deg = np.asarray(x.sum(axis=0)).ravel()
    ru = np.asarray(x.sum(axis=1)).ravel()
    p_ui = x.multiply(1.0 / np.maximum(ru, 1)[:, None]).tocsr()
    p_iu = x.T.multiply(1.0 / np.maximum(deg, 1)[:, None]).tocsr()
    walk = np.asarray(((h @ p_iu) @ p_ui[:, ti]).todense())
    for beta in (0.0, 0.5, 1.0):
        out[f"RP3 walk to tail, beta={beta}"] = walk * np.maximum(deg[ti], 1) ** -beta
    # the share of the user's history in the tail item's category (leaf), and in its top level
    cats = d["items_df"].set_index("item_id").reindex(fit.item_ids)["category"].astype(str)
    for label, key in (("category", cats), ("top category", cats.str.split(" > ").str[0])):
        codes, _ = pd.factorize(key.to_numpy())
        onehot = sp.csr_matrix(
            (np.ones(codes.size), (np.arange(codes.size), codes)),
            shape=(codes.size, codes.max() + 1),
        )
        share = np.asarray((h @ onehot).todense())
        share /= np.maximum(share.sum(1, keepdims=True), 1)
        out[f"history share of the item's {label}"] = share[:, codes[ti]]
    if text:
        from ltrec.models.train import add_text

        e = np.asarray(add_text(fit, d["name"]).item_text_emb, dtype=np.float64)
        e /= np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
        prof = np.asarray(h @ e)
        prof /= np.maximum(np.linalg.norm(prof, axis=1, keepdims=True), 1e-12)
        out["text profile cosine"] = prof @ e[ti].T
    if d["repeat"]:  # the user's own purchases of each tail item (repeat domains)
        out["own purchase count"] = np.asarray(fit.matrix[u][:, ti].todense(), dtype=np.float64)
    b = _ranks(out["base model"])
    for name in ("co-occurrence cosine", "RP3 walk to tail, beta=0.5"):
        out[f"rank fusion: base + {name}"] = b + _ranks(out[name])
    return out


def scorers(d: dict, text: bool = False) -> None:
    """How well each scorer ranks the tail among the tail: hit rates of its top n eligible tail
    items (every sampled user), recall@10 among tail targets (users with one), beside the hit
    rate of the base list's head items at ranks 6-10 (what a tail slot displaces)."""
    tail, u = d["tail"], d["users"]
    ti = np.flatnonzero(tail)
    col = np.full(tail.size, -1)
    col[ti] = np.arange(ti.size)
    n = len(u)
    target = np.zeros((n, ti.size), dtype=bool)
    for r, t in enumerate(d["test"]):
        c = col[np.asarray(t, dtype=np.int64)]
        target[r, c[c >= 0]] = True
    seen = np.asarray(d["seen"][:, ti].todense()) > 0
    eligible = np.ones_like(seen) if d["repeat"] else ~seen
    target &= eligible
    has = target.any(1)
    items0, _ = d["pools"][0]
    hit0 = np.zeros(items0[:, :K].shape, dtype=bool)
    for r in range(n):
        hit0[r] = np.isin(items0[r, :K], d["test"][r]) & (items0[r, :K] >= 0)
    head0 = ~tail[np.maximum(items0[:, :K], 0)]
    low = hit0[:, 5:K][head0[:, 5:K]].mean()
    print(
        f"  users {n}, with an eligible tail target {int(has.sum())} "
        f"({target.sum() / max(1, has.sum()):.2f} each); eligible tail items per user "
        f"{eligible.sum(1).mean():.0f}; base list head hit rate at ranks 6-10: {low:.4f}"
    )
    print(f"  {'scorer':52s} hit@1   hit@3   hit@5   P@10    R@10(tail users)")
    fills = {}
    found = tail_scorers(d, text)
    # A ceiling, not a strategy: the validation targets first, then the base's order. It says
    # how much tail the slots could hold at the bound if the tail were ranked perfectly.
    # Partial oracles (perfect for a seeded share q of users, the base's order for the rest)
    # say how much better the tail ranking would have to be for 1.5x.
    pick = np.random.default_rng(0).random(n)
    for q in (0.02, 0.05, 0.1, 1.0):
        o = target * 1e6 * (pick < q)[:, None] + _ranks(found["base model"])
        found[f"ORACLE for {q:.0%} of users (a ceiling, not a strategy)"] = o
    for name, s in found.items():
        s = np.where(eligible, s, -np.inf)
        o = np.argsort(-s, axis=1, kind="stable")[:, :K]
        fills[name] = np.where(np.isfinite(np.take_along_axis(s, o, 1)), ti[o], -1)
        h = np.take_along_axis(target, o, 1) & np.isfinite(np.take_along_axis(s, o, 1))
        rec = h[has].sum(1) / np.minimum(K, target[has].sum(1))
        print(
            f"  {name:52s} {h[:, :1].mean():.4f}  {h[:, :3].mean():.4f}  {h[:, :5].mean():.4f}"
            f"  {h.mean():.4f}  {rec.mean():.4f}"
        )
    slot_fill(d, fills)


def slot_fill(d: dict, fills: dict[str, np.ndarray]) -> None:
    """The linear boost decides how many tail slots a list gets and where (its own list); the
    tail items in those slots are replaced, in order, by a scorer's best eligible tail items
    (any tail item, not only the pool's: an upper bound for a tail candidate source).
    Strength bisected to 5% NDCG@10 loss, APLT@10 against the linear boost's."""
    from ltrec.rerank.sweep import evaluation_scorer

    tail = d["tail"]
    scorer = evaluation_scorer(
        d["test"], item_pop=d["item_pop"], k=K, tail_mask=tail, seen=d["seen"]
    )
    items, s0 = d["pools"][0]
    rel = minmax(np.where(items >= 0, s0, -np.inf))
    t = tail[np.maximum(items, 0)] & (items >= 0)

    def boosted(x):
        o = np.argsort(-(rel + x * t), axis=1, kind="stable")[:, :K]
        return np.take_along_axis(items, o, 1)

    base = boosted(0.0)
    bn = scorer(base, base)[f"ndcg@{K}"]

    def filled(x, fill):
        lst = boosted(x).copy()
        slot = tail[np.maximum(lst, 0)] & (lst >= 0)
        for r in range(lst.shape[0]):
            pos = np.flatnonzero(slot[r])
            # the scorer's tail items not already in the list's head part
            f = fill[r][(fill[r] >= 0) & ~np.isin(fill[r], lst[r][~slot[r]])][: pos.size]
            lst[r, pos[: f.size]] = f
        return lst

    print("  tail slots (where the linear boost puts them) filled from each scorer:")
    for name, fill in fills.items():
        best = strongest(lambda x, f=fill: scorer(filled(x, f), base), bn, 2.0, steps=12)
        if best is None:
            print(f"    {name:52s} none within the bound")
            continue
        r0 = scorer(boosted(best[0]), base)[f"aplt@{K}"]
        print(
            f"    {name:52s} beta {best[0]:.4g}  loss {best[1]:.4f}  APLT {best[2]:.4f}  "
            f"tail recall {best[3]:.4f}  (the boost's own list at that beta: APLT {r0:.4f})"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="demo", choices=["demo", "cc0"])
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--text", action="store_true", help="add the text-profile scorer (MiniLM)")
    ap.add_argument(
        "--part",
        default="all",
        choices=["all", "strategies", "scorers"],
        help="strategies: the bisected ideas; scorers: tail-among-tail ranking of each scorer",
    )
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LTREC_DATA_DIR"] = tmp
        if args.dataset == "demo":
            from ltrec.synth.demo import DemoConfig, build_demo

            build_demo(DemoConfig(seed=42))
            d = validation_pools("demo", "ease", args.users)
        else:
            from _cc0 import import_cc0

            import_cc0("cj")
            d = validation_pools("cj", "itemknn", args.users)
        if args.part in ("all", "scorers"):
            print("tail scorers (ranking the eligible tail items among themselves):")
            scorers(d, args.text)
        if args.part in ("all", "strategies"):
            explore(d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
