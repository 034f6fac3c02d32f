"""The real CC0 Complete Journey sample, shared by the benchmarks that run on it."""

from __future__ import annotations

from pathlib import Path

#: ../shared/datasets/completejourney beside the repository (read-only).
CJ = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "completejourney"


def import_cc0(name: str = "cj", root: Path = CJ) -> None:
    """Import the sample as dataset ``name`` (preset ``completejourney``, replacing it) into
    ``$LTREC_DATA_DIR``: transactions as events, products as items, demographics as users."""
    from ltrec.store.importing import import_dataset

    import_dataset(
        name,
        root / "transactions_sample.parquet",
        root / "products_in_transactions_sample.csv",
        root / "demographics.csv",
        preset="completejourney",
        replace=True,
    )


def validation_data(name: str = "cj", text: bool = False):
    """The CC0 *validation* split: the training events of the default split, split again the
    same way (by time, the last 20% as targets, seen items kept). Hyper-parameters are chosen
    here; the test split is never looked at. Imports the sample as ``name`` first; ``text``
    adds the item text vectors (content models), cached in that store."""
    from ltrec.evaluation.split import temporal_split
    from ltrec.models.data import InteractionData, load_catalogue
    from ltrec.store import connect

    import_cc0(name)
    con = connect(name)
    try:
        full = InteractionData.from_store(con)  # default_split(meta): repeat-purchase split
        items, users = load_catalogue(con)
    finally:
        con.close()
    val = temporal_split(full.split.train, full.split.config)
    data = InteractionData.from_split(val, items, users, repeat_domain=full.repeat_domain)
    if text:
        from ltrec.models.train import add_text

        data = add_text(data, name)
    return data


def paired_ratio(model, base, metric: str = "recall@10", n_boot: int = 2000, seed: int = 0):
    """``mean(model) / mean(base)`` of a per-user metric, with a 95% *paired* bootstrap interval
    (both means on the same resampled users, the users both evaluated), as
    ``(ratio, low, high)``. Much narrower than dividing the two marginal intervals: a user who
    is easy for one model is easy for the other, and that shared part cancels."""
    import numpy as np
    import pandas as pd

    from ltrec.evaluation.aggregate import base_name

    name = base_name(metric)
    both = pd.concat(
        [model.per_user[name].rename("m"), base.per_user[name].rename("b")], axis=1, join="inner"
    ).dropna()
    m, b = both["m"].to_numpy(), both["b"].to_numpy()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(both), size=(n_boot, len(both)))
    ratios = m[idx].mean(axis=1) / np.maximum(b[idx].mean(axis=1), 1e-12)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(m.mean() / max(b.mean(), 1e-12)), float(low), float(high)
