"""Build a re-ranking :class:`~ltrec.rerank.base.Context` from the models' ``InteractionData``.

The strategies never import the model or evaluation packages; this adapter is the one place
that knows both layouts (category code 0 = unknown there, -1 here; buckets from the evaluation
core's :func:`~ltrec.definitions.popularity_buckets` with the configured cuts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ltrec.config import get_settings
from ltrec.definitions import popularity_buckets
from ltrec.rerank.base import Context


def context_from_data(
    data: Any,
    *,
    cuts: Sequence[float] | None = None,
    items: pd.DataFrame | None = None,
    price: np.ndarray | None = None,
    in_stock: np.ndarray | None = None,
) -> Context:
    """A context for ``data`` (an ``InteractionData``): popularity, buckets, categories, text
    embeddings, training history, and price / stock from the store's ``items`` table when given
    (or as arrays aligned to ``data.item_ids``, which take precedence).
    """

    cuts = tuple(cuts or get_settings().bucket_cuts)
    bucket = popularity_buckets(np.asarray(data.item_pop, dtype=float), cuts)
    n = len(data.item_ids)
    price_ = np.full(n, np.nan)
    stock = np.ones(n, dtype=bool)
    if items is not None and len(items):
        frame = items.set_index(items["item_id"].astype(str))
        ids = pd.Index(np.asarray(data.item_ids, dtype=str))
        if "price" in frame:
            price_ = pd.to_numeric(frame["price"], errors="coerce").reindex(ids).to_numpy(float)
        if "in_stock" in frame:
            st = frame["in_stock"].reindex(ids)
            stock = st.fillna(True).astype(bool).to_numpy()  # unknown stock: assume in stock
    price = price if price is not None else price_
    stock = in_stock if in_stock is not None else stock
    names = list(data.category_names)[1:]
    return Context.from_data(
        data.item_pop,
        bucket=bucket,
        category=np.asarray(data.item_category, dtype=np.int64) - 1,
        category_names=names,
        embedding=data.item_text_emb,
        price=price,
        in_stock=stock,
        item_ids=data.item_ids,
        history=data.matrix,
    )
