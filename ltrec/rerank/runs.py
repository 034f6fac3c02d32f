"""Re-ranking a saved model run: evaluation, one user's list, and every user's lists.

What ``ltrec evaluate/recommend/export --rerank JSON`` run. The base model scores each user's
top ``pool`` candidates once; the setting re-ranks them to K. Data and context come from the
run's own split, so a dataset changed since training is refused as in ``ltrec evaluate``; a
stale run (the dataset re-imported since) is refused unless ``allow_stale``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltrec.errors import BadInputError
from ltrec.rerank.adapters import context_from_data
from ltrec.rerank.base import Context, rerank_batch
from ltrec.rerank.pipeline import Pipeline, parse_config, to_dict
from ltrec.rerank.strategies import StrategyConfig


@dataclass
class RunContext:
    """A loaded run with the data it was trained on and the re-ranking context."""

    run: Any  # ltrec.models.registry.LoadedRun
    data: Any  # ltrec.models.data.InteractionData
    context: Context


def load(
    dataset: str,
    run_id: str,
    config: StrategyConfig,
    data_dir: Path | str | None = None,
    *,
    allow_stale: bool = False,
) -> RunContext:
    """Load a run, its training data (fingerprint-checked) and a context with price and stock.

    Raises:
        StaleRunError: the dataset was re-imported since training (unless ``allow_stale``).
    """
    from ltrec.models.data import load_catalogue
    from ltrec.models.registry import load_run
    from ltrec.models.train import load_run_data
    from ltrec.store import connect

    run = load_run(dataset, run_id, data_dir, allow_stale=allow_stale)
    # Text vectors only where a setting uses them (they may load the MiniLM encoder).
    wants_text = getattr(config, "strategy", "") == "mmr" and getattr(config, "by", "") == (
        "embedding"
    )
    # every event for an all-data run, the split's training data otherwise (fingerprint-checked)
    data = load_run_data(
        dataset, run, text=bool(run.model.content_model or wants_text), data_dir=data_dir
    )
    con = connect(dataset, Path(data_dir) if data_dir is not None else None)
    try:
        items, _ = load_catalogue(con)
    finally:
        con.close()
    return RunContext(run, data, context_from_data(data, items=items))


def evaluate_reranked(
    dataset: str,
    run_id: str,
    config: Any,
    *,
    k: int = 10,
    n_boot: int = 200,
    data_dir: Path | str | None = None,
    allow_stale: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Every metric of the re-ranked lists on the run's test split (as ``evaluate_run``).

    The keys are those of ``ltrec evaluate`` plus ``overlap@k`` and ``rbo@k`` against the base
    model's own top K.
    """
    from ltrec.evaluation import evaluate
    from ltrec.models.train import split_targets

    cfg = parse_config(config)
    rc = load(dataset, run_id, cfg, data_dir, allow_stale=allow_stale)
    users, test = split_targets(rc.data)
    items, scores = rc.run.model.recommend(users, max(cfg.pool, k))
    batch = rerank_batch(
        Pipeline(cfg), items[:, : cfg.pool], scores[:, : cfg.pool], rc.context, users.tolist(), k
    )
    result = evaluate(
        batch.items,
        test,
        item_pop=rc.data.item_pop,
        k=k,
        tail_mask=rc.context.tail,
        item_category=rc.data.item_category,
        item_embedding=rc.data.item_text_emb,
        base_recs=items[:, :k],
        user_ids=rc.data.user_ids[users].tolist(),
        seen=rc.data.matrix[users],
        n_boot=n_boot,
        seed=rc.run.model.config.seed,
        label=f"{rc.run.model.name} + {cfg.label()}",
    )
    return result, rc.run.manifest


def _user_rows(rc: RunContext, batch: Any, users: np.ndarray) -> pd.DataFrame:
    n, k = batch.items.shape
    valid = batch.items >= 0
    rows_u = np.repeat(np.arange(n), k)[valid.ravel()]
    ranks = np.tile(np.arange(1, k + 1), n)[valid.ravel()]
    items = batch.items[valid]
    reasons = [r for lst in batch.lists for r in lst.reasons]
    return pd.DataFrame(
        {
            "user_id": rc.data.user_ids[users[rows_u]],
            "rank": ranks,
            "item_id": rc.data.item_ids[items],
            "base_score": batch.base_scores[valid],
            "final_score": batch.scores[valid],
            "base_rank": batch.base_ranks[valid],
            "reason": reasons,
        }
    )


def recommend_reranked(
    dataset: str,
    run_id: str,
    user_id: str,
    config: Any,
    *,
    k: int = 10,
    data_dir: Path | str | None = None,
    allow_stale: bool = False,
) -> dict[str, Any]:
    """One user's re-ranked top K: item, title, base score, final score, base rank, reason."""
    from ltrec.store import connect, cursor

    cfg = parse_config(config)
    rc = load(dataset, run_id, cfg, data_dir, allow_stale=allow_stale)
    u = rc.data.user_index.get(str(user_id), -1)
    items, scores = rc.run.model.recommend(np.array([u]), max(cfg.pool, k))
    batch = rerank_batch(
        Pipeline(cfg),
        items[:, : cfg.pool],
        scores[:, : cfg.pool],
        rc.context,
        [u if u >= 0 else None],
        k,
    )
    ranked = batch.row(0)
    ids = rc.data.item_ids[ranked.items].tolist()
    titles: dict[str, str | None] = {}
    if ids:
        con = connect(dataset, Path(data_dir) if data_dir is not None else None)
        try:
            marks = ", ".join("?" for _ in ids)
            rows = (
                cursor(con)
                .execute(
                    f"SELECT item_id, title FROM items WHERE item_id IN ({marks})",  # noqa: S608
                    ids,
                )
                .fetchall()
            )
            titles = {str(a): b for a, b in rows}
        finally:
            con.close()
    stats = ranked.stats(rc.context)

    def num(x: float) -> float | None:
        return None if not np.isfinite(x) else float(x)

    return {
        "run_id": run_id,
        "model": rc.run.model.name,
        "user": str(user_id),
        "known_user": u >= 0,
        "stale": rc.run.stale,
        "rerank": to_dict(cfg),
        "setting": ranked.setting,
        "notes": list(ranked.notes),
        "list": {k_: (num(v) if isinstance(v, float) else v) for k_, v in stats.to_dict().items()},
        "items": [
            {
                "rank": r + 1,
                "item_id": i,
                "title": titles.get(i),
                "score": num(float(ranked.scores[r])),
                "base_score": num(float(ranked.base_scores[r])),
                "base_rank": int(ranked.base_ranks[r]),
                "bucket": rc.context.bucket_names[rc.context.bucket[ranked.items[r]]],
                "reason": ranked.reasons[r],
            }
            for r, i in enumerate(ids)
        ],
    }


def export_lists(
    dataset: str,
    run_id: str,
    out: Path | str,
    config: Any = None,
    *,
    k: int = 10,
    batch_size: int = 2048,
    data_dir: Path | str | None = None,
    allow_stale: bool = False,
) -> dict[str, Any]:
    """Write every user's list (user_id, rank, item_id, base_score, final_score, base_rank,
    reason) to ``out`` (.csv, formula-escaped, or .parquet). Returns a summary.
    """
    from ltrec.analytics.export import escape_cell

    out = Path(out)
    fmt = out.suffix.lower()
    if fmt not in (".csv", ".parquet"):
        raise BadInputError(
            f"cannot write {out.name!r}: the export format is chosen by the file name",
            hint="end --out with .csv or .parquet",
        )
    cfg = parse_config(config)
    rc = load(dataset, run_id, cfg, data_dir, allow_stale=allow_stale)
    pipe = Pipeline(cfg)
    frames = []
    all_users = np.arange(rc.data.n_users)
    for start in range(0, all_users.size, batch_size):
        users = all_users[start : start + batch_size]
        items, scores = rc.run.model.recommend(users, max(cfg.pool, k))
        batch = rerank_batch(
            pipe, items[:, : cfg.pool], scores[:, : cfg.pool], rc.context, users.tolist(), k
        )
        frames.append(_user_rows(rc, batch, users))
    columns = ["user_id", "rank", "item_id", "base_score", "final_score", "base_rank", "reason"]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if fmt == ".csv":
        text = frame.copy()
        for col in ("user_id", "item_id", "reason"):
            text[col] = text[col].astype(object).map(escape_cell)
        text.to_csv(tmp, index=False)
    else:
        frame.to_parquet(tmp, index=False)
    tmp.replace(out)  # a reader never sees half a file
    return {
        "run_id": run_id,
        "stale": rc.run.stale,
        "rerank": to_dict(cfg),
        "out": str(out),
        "format": fmt[1:],
        "users": int(rc.data.n_users),
        "rows": int(len(frame)),
        "k": k,
    }
