"""The classification view of the pointwise NCF model (DESIGN §4, §6).

The original design judged the hybrid NCF model as a binary classifier: does the model give a
held-out positive (user, item) pair a higher probability than a sampled negative? That says how
well the model separates interactions from random non-interactions, not how well it ranks the
whole catalogue (sampled metrics can even reverse the order of models: Krichene & Rendle 2020).
Every result carries :data:`LABEL` so no page or report mistakes it for ranking quality.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from ltrec.config import ConfigBase
from ltrec.errors import BadInputError

LABEL = "classification view (sampled negatives): not a ranking metric"


class ClassificationConfig(ConfigBase):
    """How negatives are sampled and where the decision threshold lies."""

    negatives_per_positive: int = Field(1, ge=1, le=100)
    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="Predict positive at p >= this.")
    seed: int = 0


@dataclass(frozen=True)
class ClassificationResult:
    """Accuracy, precision, recall, F1 and ROC AUC of positives vs sampled negatives."""

    accuracy: float
    precision: float
    recall: float
    f1: float
    auc: float
    n_pos: int
    n_neg: int
    threshold: float
    label: str = LABEL

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def sample_negatives(
    users: np.ndarray,
    interacted: sp.csr_matrix,
    *,
    per_positive: int = 1,
    seed: int = 0,
    max_rounds: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """For each positive's user, ``per_positive`` items drawn uniformly from the items that user
    never interacted with (in ``interacted``: training and test together). Seeded.

    Rejection sampling, vectorised: draw, drop the draws that hit an interacted item, redraw
    those. Users who interacted with the whole catalogue get no negative.

    Returns:
        ``(neg_users, neg_items)`` as index arrays.
    """
    interacted = sp.csr_matrix(interacted, dtype=bool)
    interacted.sort_indices()
    n_users, n_items = interacted.shape
    users = np.repeat(np.asarray(users, dtype=np.int64), per_positive)
    full = np.diff(interacted.indptr)[users] >= n_items
    users = users[~full]
    rng = np.random.default_rng(seed)
    items = np.full(users.size, -1, dtype=np.int64)
    todo = np.arange(users.size)
    rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(interacted.indptr))
    keys = rows * n_items + interacted.indices
    for _ in range(max_rounds):
        if todo.size == 0:
            break
        draw = rng.integers(0, n_items, todo.size)
        q = users[todo] * n_items + draw
        pos = np.minimum(np.searchsorted(keys, q), max(keys.size - 1, 0))
        clash = keys[pos] == q if keys.size else np.zeros(q.size, dtype=bool)
        items[todo[~clash]] = draw[~clash]
        todo = todo[clash]
    for t in todo:  # nearly full users: pick from the complement directly
        free = np.setdiff1d(
            np.arange(n_items),
            interacted.indices[interacted.indptr[users[t]] : interacted.indptr[users[t] + 1]],
        )
        items[t] = rng.choice(free)
    return users, items


def classification_metrics(
    y_true: np.ndarray, y_prob: np.ndarray, threshold: float = 0.5
) -> ClassificationResult:
    """Confusion-matrix metrics at ``threshold`` and the ROC AUC (Mann-Whitney U form).

    accuracy = (TP + TN) / N; precision = TP / (TP + FP); recall = TP / (TP + FN);
    F1 = 2 P R / (P + R); AUC = P(score of a random positive > a random negative), ties 1/2
    (Hanley & McNeil 1982). Undefined ratios are NaN.
    """
    # lazy: scipy.stats doubles `import ltrec.evaluation` (+1.4 s CPU); only the AUC needs it
    from scipy.stats import rankdata

    y = np.asarray(y_true, dtype=bool)
    p = np.asarray(y_prob, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise BadInputError("labels and probabilities must be 1-d arrays of the same length")
    pred = p >= threshold
    tp = float(np.sum(pred & y))
    fp = float(np.sum(pred & ~y))
    fn = float(np.sum(~pred & y))
    tn = float(np.sum(~pred & ~y))
    n_pos, n_neg = int(y.sum()), int((~y).sum())

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else float("nan")

    prec, rec = ratio(tp, tp + fp), ratio(tp, tp + fn)
    f1 = ratio(2 * prec * rec, prec + rec) if np.isfinite(prec) and np.isfinite(rec) else np.nan
    if n_pos and n_neg:
        ranks = rankdata(p)
        auc = (ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    else:
        auc = float("nan")
    return ClassificationResult(
        ratio(tp + tn, tp + tn + fp + fn), prec, rec, float(f1), float(auc), n_pos, n_neg, threshold
    )


def classification_view(
    score_pairs: Callable[[np.ndarray, np.ndarray], np.ndarray],
    pos_users: np.ndarray,
    pos_items: np.ndarray,
    interacted: sp.csr_matrix,
    config: ClassificationConfig | None = None,
) -> ClassificationResult:
    """Score held-out positives and sampled negatives with a pointwise model and classify.

    Args:
        score_pairs: ``(user_idx, item_idx) -> probability`` per pair (e.g. the NCF model's
            sigmoid output).
        pos_users, pos_items: the held-out positive pairs (index arrays).
        interacted: every known interaction (train and test), so negatives are true unknowns.
        config: negatives per positive, threshold, seed.
    """
    config = config or ClassificationConfig()
    pos_users = np.asarray(pos_users, dtype=np.int64)
    pos_items = np.asarray(pos_items, dtype=np.int64)
    if pos_users.size == 0 or pos_users.shape != pos_items.shape:
        raise BadInputError("give one or more held-out positive pairs (users and items alike)")
    neg_u, neg_i = sample_negatives(
        pos_users, interacted, per_positive=config.negatives_per_positive, seed=config.seed
    )
    users = np.concatenate([pos_users, neg_u])
    items = np.concatenate([pos_items, neg_i])
    y = np.concatenate([np.ones(pos_users.size, bool), np.zeros(neg_u.size, bool)])
    prob = np.asarray(score_pairs(users, items), dtype=float).ravel()
    if prob.shape != y.shape:
        raise BadInputError(f"the model returned {prob.size} scores for {y.size} pairs")
    return classification_metrics(y, prob, config.threshold)
