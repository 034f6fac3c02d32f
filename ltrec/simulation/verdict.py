"""One verdict sentence per simulated policy, separating what the model does from the boost.

A policy's sentence says where its exposure went over the rounds (the per-round exposure Gini
from the first to the last round), the tail's share of all its slots and its purchases. Then:

* a re-ranked policy is set against the **same model without re-ranking** when the
  simulation has it (that difference is the boost's doing); without it, the sentence says
  which policy to add to separate the two;
* a model without re-ranking is set against **popularity without re-ranking** when the
  simulation has it (that difference is the model's doing).

Differences are in percentage points for shares and relative for purchases; a simulation is
one seeded draw, so the sentences compare, they do not test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ltrec.definitions import pct, signed_pct

#: A change in the per-round exposure Gini smaller than this reads as "stays level".
GINI_LEVEL = 0.02


def policy_facts(result: Any) -> pd.DataFrame:
    """Per policy (in the simulation's order): ``gini_first``, ``gini_last`` (per-round
    exposure Gini of the first and last rounds), ``tail_share_all`` (tail slots / slots over
    all rounds), ``purchases``, ``tail_purchases``."""
    r = result.rounds.sort_values("round")
    r = r.assign(tail_slots=r["tail_share"] * r["slots"])
    g = r.groupby("policy", sort=False)
    out = pd.DataFrame(
        {
            "gini_first": g["exposure_gini"].first(),
            "gini_last": g["exposure_gini"].last(),
            "tail_share_all": g["tail_slots"].sum() / g["slots"].sum().replace(0, np.nan),
            "purchases": g["purchases"].sum(),
            "tail_purchases": g["tail_purchases"].sum(),
        }
    )
    return out.reindex(list(result.labels))


def _key(policy: Any) -> tuple[str, str]:
    return policy.model, repr(sorted((policy.params or {}).items()))


def _boosted(policy: Any) -> bool:
    rerank = policy.rerank or {}
    return bool(rerank) and rerank.get("strategy", "none") != "none"


def _against(facts: pd.DataFrame, label: str, other: str, what: str) -> str:
    a, b = facts.loc[label], facts.loc[other]
    tail_pp = (a["tail_share_all"] - b["tail_share_all"]) * 100
    rel = (a["purchases"] / b["purchases"] - 1) if b["purchases"] else None
    bought = f"purchases {signed_pct(rel)}" if rel is not None else "no purchases to compare"
    return (
        f"{what}, against {other}: tail slots {tail_pp:+.1f} pp, exposure Gini "
        f"{a['gini_last'] - b['gini_last']:+.3f} in the last round, {bought}"
    )


def verdicts(result: Any) -> list[str]:
    """One sentence per policy of a ``SimulationResult`` (see the module docstring)."""
    facts = policy_facts(result)
    policies: dict[str, Any] = dict(zip(result.labels, result.policies, strict=True))
    plain = {
        _key(p): label
        for label, p in policies.items()
        if not _boosted(p)  # the first un-boosted policy of each model stands for it
    }
    popularity = next(
        (lab for lab, p in policies.items() if p.model == "popularity" and not _boosted(p)),
        None,
    )
    out = []
    for label, p in policies.items():
        f = facts.loc[label].to_dict()
        change = f["gini_last"] - f["gini_first"]
        trend = (
            "exposure concentrates"
            if change > GINI_LEVEL
            else ("exposure spreads" if change < -GINI_LEVEL else "exposure stays level")
        )
        text = (
            f"{label}: {trend} (Gini {f['gini_first']:.2f} → {f['gini_last']:.2f}), "
            f"{pct(f['tail_share_all'])} of slots on tail items, {int(f['purchases']):,} "
            f"purchases ({int(f['tail_purchases']):,} of tail items)"
        )
        if _boosted(p):
            alone = plain.get(_key(p))
            if alone is not None and alone != label:
                text += "; " + _against(facts, label, alone, "the boost")
            else:
                text += (
                    f"; add the policy '{p.model}, no re-ranking' to tell the boost's effect "
                    "from the model's"
                )
        elif p.model != "popularity" and popularity is not None:
            text += "; " + _against(facts, label, popularity, "the model")
        elif p.model == "popularity":
            text += "; the self-reinforcing baseline (most-bought items for everyone)"
        out.append(text + ".")
    return out
