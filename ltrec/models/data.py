"""InteractionData: what every model trains on (DESIGN §4).

Built from the store on the evaluation core's split (:func:`ltrec.evaluation.temporal_split`), so
every model sees the same training events and is scored on the same test pairs, or from plain
DataFrames (:meth:`InteractionData.from_frame`) for tests and notebooks.

Conventions:

* Users: every user of the ``users`` table and of the events (training *and* test), sorted by
  id. A user with no training interaction has an empty matrix row ("no history"); models score
  such users with their fallback (popularity).
* Items: the whole catalogue (``items`` table) plus any item only the events name, sorted by id,
  so items with no interaction exist and are scored.
* ``matrix[u, i]`` is the sum of event weights (view 1, cart 3, purchase 5 by default,
  :data:`ltrec.config.EVENT_WEIGHTS`); pairs whose weight sums to 0 (impressions only) are not
  stored, so the matrix's non-zeros are exactly the "seen" pairs of the split.
* ``last_ts`` has the same sparsity as ``matrix`` and holds the pair's last event time in
  seconds since the epoch.
* The individual events behind the stored pairs are kept as flat arrays: ``event_pair`` (the
  position of the event's pair among ``matrix``'s non-zeros), ``event_ts`` and
  ``event_weight``, in no particular order (the groupby's own group numbers: no extra sort).
  Time-decayed frequencies (:meth:`InteractionData.decayed_matrix`) need them: a pair's sum
  and last time alone cannot tell four purchases last week from four a year ago.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ltrec.config import EVENT_WEIGHTS
from ltrec.definitions import item_text
from ltrec.errors import BadInputError

if TYPE_CHECKING:
    from ltrec.evaluation.split import Split, SplitConfig

#: Price bands: 0 = unknown, 1..PRICE_BANDS by quantile of price within the catalogue.
PRICE_BANDS = 5
#: ``encoder(texts) -> float32 [len(texts), d]``; ltrec.features.text supplies the real one.
TextEncoder = Callable[[list[str]], np.ndarray]
#: Seconds per day (half-lives are given in days).
DAY_S = 86_400.0


def _codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Category-like values as int32 codes; 0 is "unknown", names[0] == ""."""
    s = values.astype("string")
    s = s.where(s.notna() & (s.str.strip() != ""), None)  # type: ignore[call-overload]  # pandas-stubs lack other=None (it sets <NA>)
    names = sorted(s.dropna().unique().tolist())
    lookup = {n: i + 1 for i, n in enumerate(names)}
    codes = s.map(lookup).fillna(0).astype(np.int32).to_numpy()
    return codes, ["", *names]


def _price_bands(price: pd.Series, bands: int = PRICE_BANDS) -> np.ndarray:
    """Quantile band of each price (1..bands); 0 where the price is missing or not positive."""
    p = pd.to_numeric(price, errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(p) & (p > 0)
    out = np.zeros(len(p), dtype=np.int32)
    if ok.sum() >= 1:
        cuts = np.quantile(p[ok], np.linspace(0, 1, bands + 1)[1:-1])
        out[ok] = 1 + np.searchsorted(cuts, p[ok], side="right")
    return out


def _weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """The event weights to use (default :data:`EVENT_WEIGHTS`), checked."""
    w = dict(EVENT_WEIGHTS if weights is None else weights)
    bad = [t for t, v in w.items() if not np.isfinite(v) or v < 0]
    if bad:
        raise BadInputError(f"event weights must be finite and >= 0: {bad}")
    return w


@dataclass(frozen=True)
class _Pairs:
    """The aggregated interactions: one entry per stored pair, sorted by (user, item) index,
    and the events behind them (``event_pair``: the event's pair position)."""

    rows: np.ndarray
    cols: np.ndarray
    weight: np.ndarray  # float64 summed event weights
    last: np.ndarray  # float64 epoch seconds of the pair's last event
    event_pair: np.ndarray
    event_ts: np.ndarray
    event_weight: np.ndarray


def _epoch_seconds(us: np.ndarray) -> np.ndarray:
    """Epoch microseconds -> float64 seconds, computed as pandas does from nanoseconds
    (``int64 ns / 1e9``), so the store-built and frame-built data agree to the bit."""
    return (np.asarray(us, dtype=np.int64) * 1000).astype(np.float64) / 1e9


@dataclass(eq=False)
class InteractionData:
    """Training interactions, vocabularies and features, all indexed by position.

    Attributes:
        user_ids / item_ids: index -> id (str arrays, sorted).
        matrix: CSR ``[n_users, n_items]`` float32, summed event weights of training events.
        last_ts: CSR like ``matrix``: last event time of the pair (float64 epoch seconds).
        item_pop: distinct training users per item (int64); item_weight: summed weights.
        item_category / item_brand / item_price_band: int32 codes (0 = unknown), with the
            code -> name lists ``category_names`` / ``brand_names``.
        item_titles / item_texts: title, and :func:`ltrec.definitions.item_text` for the text
            encoder.
        item_text_emb: float32 ``[n_items, d]`` or None until :meth:`with_text` fills it;
            ``text_encoder`` names the encoder that made it.
        user_features: segment column -> int32 codes per user (0 = unknown), names in
            ``user_feature_names``.
        weights: the event weights used. split: the evaluation split (``from_store`` only).
        event_pair / event_ts / event_weight: the events behind the stored pairs (see the
            module doc); None when the data was built without them (then decay uses
            ``last_ts``).
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    matrix: sp.csr_matrix
    last_ts: sp.csr_matrix
    item_pop: np.ndarray
    item_weight: np.ndarray
    item_category: np.ndarray
    category_names: list[str]
    item_brand: np.ndarray
    brand_names: list[str]
    item_price_band: np.ndarray
    item_titles: list[str]
    item_texts: list[str]
    user_features: dict[str, np.ndarray]
    user_feature_names: dict[str, list[str]]
    weights: dict[str, float]
    item_text_emb: np.ndarray | None = None
    text_encoder: str | None = None
    split: Split | None = None
    event_pair: np.ndarray | None = None
    event_ts: np.ndarray | None = None
    event_weight: np.ndarray | None = None
    #: The dataset is a repeat-purchase domain (:func:`ltrec.store.profile.is_repeat_domain`,
    #: read from its meta by :meth:`from_store`): seen items are legitimate recommendations and
    #: models blend in the user's own frequency. Not the split's ``keep_seen``, which only says
    #: which test targets count.
    repeat_domain: bool = False

    _user_index: dict[str, int] = field(default_factory=dict, repr=False)
    _item_index: dict[str, int] = field(default_factory=dict, repr=False)
    _fingerprint: str | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ sizes and lookups

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def user_index(self) -> dict[str, int]:
        if not self._user_index:
            self._user_index = {u: i for i, u in enumerate(self.user_ids.tolist())}
        return self._user_index

    @property
    def item_index(self) -> dict[str, int]:
        if not self._item_index:
            self._item_index = {it: i for i, it in enumerate(self.item_ids.tolist())}
        return self._item_index

    def users_to_index(self, ids: Sequence[Any]) -> np.ndarray:
        """User ids -> indices; ``-1`` for ids not in the vocabulary."""
        idx = self.user_index
        return np.fromiter((idx.get(str(u), -1) for u in ids), dtype=np.int64, count=len(ids))

    def items_to_index(self, ids: Sequence[Any]) -> np.ndarray:
        """Item ids -> indices; ``-1`` for ids not in the catalogue."""
        idx = self.item_index
        return np.fromiter((idx.get(str(i), -1) for i in ids), dtype=np.int64, count=len(ids))

    def history(self, user: int) -> np.ndarray:
        """A user's training items, most recent first (ties: lower index first)."""
        if user < 0:
            return np.empty(0, dtype=np.int64)
        lo, hi = self.last_ts.indptr[user], self.last_ts.indptr[user + 1]
        items = self.last_ts.indices[lo:hi].astype(np.int64)
        order = np.lexsort((items, -self.last_ts.data[lo:hi]))
        return items[order]

    def recent_items(self, users: np.ndarray, n: int) -> np.ndarray:
        """``[len(users), n]`` most recent training items per user, padded with -1."""
        out = np.full((len(users), n), -1, dtype=np.int64)
        for r, u in enumerate(np.asarray(users, dtype=np.int64)):
            h = self.history(int(u))[:n]
            out[r, : len(h)] = h
        return out

    # ------------------------------------------------------------------ time decay

    def _has_events(self) -> bool:
        """True when the per-event arrays describe exactly the current ``matrix``.

        Code that rebuilds ``matrix`` with :func:`dataclasses.replace` (the feedback-loop
        simulation appends events) leaves the arrays stale; the events' weights then no longer
        sum to the matrix's, and decay falls back to ``last_ts``. One ``bincount``: cheap.
        """
        ep, ts, ew = self.event_pair, self.event_ts, self.event_weight
        if ep is None or ts is None or ew is None or not (len(ep) == len(ts) == len(ew)):
            return False
        nnz = self.matrix.nnz
        if len(ep) and (int(ep.min()) < 0 or int(ep.max()) >= nnz):
            return False
        sums = np.bincount(ep, weights=ew, minlength=nnz)
        return bool(np.allclose(sums, self.matrix.data, rtol=1e-5, atol=1e-6))

    def reference_times(self, reference: Literal["user", "global"] = "user") -> np.ndarray:
        """Time each user's ages are measured from: ``[n_users]`` epoch seconds.

        ``"user"``: the user's own last training event (0 for users without one), so a
        household that shops rarely is compared with its own last trip; ``"global"``: the last
        training event of the whole data (the split's cut-off side) for everyone.
        """
        last = self.last_ts
        if reference == "global":
            t = float(last.data.max()) if last.nnz else 0.0
            return np.full(self.n_users, t)
        counts = np.diff(last.indptr)
        out = np.zeros(self.n_users)
        has = counts > 0
        if has.any():
            out[has] = np.maximum.reduceat(last.data, last.indptr[:-1][has])
        return out

    def decayed_matrix(
        self, half_life_days: float, reference: Literal["user", "global"] = "user"
    ) -> sp.csr_matrix:
        """Recency-decayed event weights, with the sparsity (and row order) of ``matrix``.

        TIFU-kNN's time-decayed item-frequency vector (Hu et al. 2020, SIGIR; also ReCANet,
        Ariannezhad et al. 2022, and Li et al. 2023's reality check of next-basket models)::

            r_ui = sum over u's events e on i of  w_e * 2 ** (-(T_u - t_e) / h)

        ``w_e`` the event's weight, ``t_e`` its time, ``h`` the half-life and ``T_u`` the
        reference time (:meth:`reference_times`). A purchase made ``h`` days before ``T_u``
        counts half, ``2h`` days a quarter; as ``h -> inf`` this is ``matrix``. Without the
        per-event arrays each pair is decayed as if all its weight fell at its last time.

        Args:
            half_life_days: ``h`` in days (> 0).
            reference: ``"user"`` or ``"global"`` (see :meth:`reference_times`).

        Returns:
            float32 CSR ``[n_users, n_items]``, same ``indptr``/``indices`` as ``matrix``.
        """
        if not (half_life_days > 0 and math.isfinite(half_life_days)):
            raise BadInputError(f"a half-life must be a positive number of days: {half_life_days}")
        m = self.matrix
        ref = self.reference_times(reference)
        rate = math.log(2.0) / (half_life_days * DAY_S)
        pair_user = np.repeat(np.arange(self.n_users), np.diff(m.indptr))
        if self._has_events():
            ep = self.event_pair
            age = np.maximum(ref[pair_user[ep]] - self.event_ts, 0.0)
            w = self.event_weight * np.exp(-rate * age)
            data = np.bincount(ep, weights=w, minlength=m.nnz)  # type: ignore[arg-type]  # event_pair is set when _has_events()
        else:
            age = np.maximum(ref[pair_user] - self.last_ts.data, 0.0)
            data = m.data.astype(np.float64) * np.exp(-rate * age)
        return sp.csr_matrix(
            (data.astype(np.float32), m.indices.copy(), m.indptr.copy()), shape=m.shape
        )

    def decayed_popularity(self, half_life_days: float) -> np.ndarray:
        """Recency-decayed distinct-user popularity of every item (float64 ``[n_items]``).

        ``pop_i = sum over users u who interacted with i of 2 ** (-(T - t_ui) / h)`` with
        ``t_ui`` the pair's last event time and ``T`` the last training event: the distinct
        users of :attr:`item_pop`, each counted by how recently they last took the item, so
        items popular lately rank above items that were popular long ago (assortments and
        seasons change). As ``h -> inf`` this is :attr:`item_pop`.
        """
        if not (half_life_days > 0 and math.isfinite(half_life_days)):
            raise BadInputError(f"a half-life must be a positive number of days: {half_life_days}")
        last = self.last_ts
        if not last.nnz:
            return np.zeros(self.n_items)
        age = float(last.data.max()) - last.data
        w = np.exp(-math.log(2.0) / (half_life_days * DAY_S) * age)
        return np.bincount(last.indices, weights=w, minlength=self.n_items)

    # ------------------------------------------------------------------ identity

    @property
    def fingerprint(self) -> str:
        """sha256 (hex, 16 chars) of vocabularies, weights, matrix and timestamps."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            for ids in (self.user_ids, self.item_ids):
                h.update("\x1f".join(ids.tolist()).encode())
                h.update(b"\x1e")
            h.update(repr(sorted(self.weights.items())).encode())
            for arr in (
                self.matrix.indptr,
                self.matrix.indices,
                self.matrix.data,
                self.last_ts.data,
                self.item_category,
                self.item_brand,
                self.item_price_band,
            ):
                h.update(np.ascontiguousarray(arr).tobytes())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def with_text(self, embeddings: np.ndarray, encoder: str) -> InteractionData:
        """A copy with the item text-embedding matrix set (one row per item, index order)."""
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != self.n_items:
            raise BadInputError(
                f"text embeddings must be [n_items={self.n_items}, d], got {emb.shape}"
            )
        return replace(self, item_text_emb=emb, text_encoder=encoder)

    def summary(self) -> dict[str, Any]:
        """JSON-ready description for manifests."""
        out: dict[str, Any] = {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": int(self.matrix.nnz),
            "users_with_history": int((np.diff(self.matrix.indptr) > 0).sum()),
            "items_with_interactions": int((self.item_pop > 0).sum()),
            "weights": dict(self.weights),
            "fingerprint": self.fingerprint,
            "text_encoder": self.text_encoder,
        }
        if self.split is not None:
            out["split"] = self.split.summary()
        return out

    # ------------------------------------------------------------------ builders

    @classmethod
    def from_frame(
        cls,
        events: pd.DataFrame,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        *,
        weights: Mapping[str, float] | None = None,
        extra_users: Sequence[str] = (),
        text_encoder: tuple[str, TextEncoder] | None = None,
    ) -> InteractionData:
        """Build from canonical DataFrames.

        Args:
            events: training events (``user_id``, ``item_id``, ``event_type``, ``ts``).
            items: the catalogue (``item_id`` and optionally ``title``, ``description``,
                ``category``, ``brand``, ``price``); None: items named by the events only.
            users: users with segment columns; None: users named by the events only.
            weights: event type -> weight (default :data:`EVENT_WEIGHTS`); unknown types weigh 0.
            extra_users: more user ids to include in the vocabulary (e.g. test-only users).
            text_encoder: ``(name, encoder)`` to fill :attr:`item_text_emb` now.
        """
        w = _weights(weights)
        missing = [c for c in ("user_id", "item_id", "event_type") if c not in events.columns]
        if missing:
            raise BadInputError(f"events lack the column(s) {', '.join(missing)}")
        ev = events[[c for c in ("user_id", "item_id", "event_type", "ts") if c in events]].copy()
        ev = ev[ev["user_id"].notna() & ev["item_id"].notna()]
        ev["user_id"] = ev["user_id"].astype(str)
        ev["item_id"] = ev["item_id"].astype(str)

        items_df, users_df = _catalogue_frames(items, users)
        item_ids = np.array(
            sorted(set(items_df["item_id"].tolist()) | set(ev["item_id"].unique().tolist())),
            dtype=object,
        )
        user_ids = np.array(
            sorted(
                set(users_df["user_id"].tolist())
                | set(ev["user_id"].unique().tolist())
                | {str(u) for u in extra_users}
            ),
            dtype=object,
        )

        # Interactions: sum weights and take the last time per pair; drop zero-weight pairs.
        ev["w"] = ev["event_type"].map(w).fillna(0.0).astype(np.float64)
        ev = ev[ev["w"] > 0]
        uidx = pd.Index(user_ids).get_indexer(pd.Index(ev["user_id"]))
        iidx = pd.Index(item_ids).get_indexer(pd.Index(ev["item_id"]))
        if "ts" in ev.columns:
            # DuckDB hands pandas datetime64[us]: convert the unit, never assume nanoseconds.
            ts = pd.to_datetime(ev["ts"], errors="coerce").astype("datetime64[ns]")
            secs = (ts.astype("int64") / 1e9).where(ts.notna(), 0.0).to_numpy(np.float64)
        else:
            secs = np.zeros(len(ev))
        frame = pd.DataFrame({"u": uidx, "i": iidx, "w": ev["w"].to_numpy(), "t": secs})
        groups = frame.groupby(["u", "i"], sort=True)
        agg = groups.agg(w=("w", "sum"), t=("t", "max")).reset_index()
        # Each event's pair: the sorted group number is the pair's position among the matrix's
        # non-zeros (rows by user, then item). Free: the groupby has computed it already.
        event_pair = groups.ngroup().to_numpy()
        pairs = _Pairs(
            rows=agg["u"].to_numpy(np.int64),
            cols=agg["i"].to_numpy(np.int32),
            weight=agg["w"].to_numpy(np.float64),
            last=agg["t"].to_numpy(np.float64),
            event_pair=event_pair,
            event_ts=np.asarray(secs, dtype=np.float64),
            event_weight=ev["w"].to_numpy(np.float32),
        )
        return cls._assemble(user_ids, item_ids, pairs, items_df, users_df, w, text_encoder)

    @classmethod
    def _assemble(
        cls,
        user_ids: np.ndarray,
        item_ids: np.ndarray,
        pairs: _Pairs,
        items_df: pd.DataFrame,
        users_df: pd.DataFrame,
        w: dict[str, float],
        text_encoder: tuple[str, TextEncoder] | None,
    ) -> InteractionData:
        """The data from sorted vocabularies, the aggregated pairs and the catalogue frames
        (one code for :meth:`from_frame` and :meth:`from_store`)."""
        n_users, n_items = len(user_ids), len(item_ids)
        event_pair = pairs.event_pair.astype(np.int32 if len(pairs.rows) < 2**31 else np.int64)
        rows, cols = pairs.rows, pairs.cols
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
        if indptr[-1] < np.iinfo(np.int32).max:
            indptr = indptr.astype(np.int32)
        shape = (n_users, n_items)
        matrix = sp.csr_matrix((pairs.weight.astype(np.float32), cols, indptr), shape=shape)
        last_ts = sp.csr_matrix((pairs.last, cols, indptr), shape=shape)
        item_pop = np.bincount(cols, minlength=n_items).astype(np.int64)
        item_weight = np.bincount(cols, weights=pairs.weight, minlength=n_items)
        event_ts, event_weight = pairs.event_ts, pairs.event_weight

        # Item features, aligned with item_ids.
        cat = items_df.set_index("item_id").reindex(item_ids)

        def col(name: str) -> pd.Series:
            return cat[name] if name in cat.columns else pd.Series([None] * n_items, cat.index)

        category, category_names = _codes(col("category"))
        brand, brand_names = _codes(col("brand"))
        price_band = _price_bands(col("price"))
        titles = col("title").astype("string").fillna("").tolist()
        texts = [
            item_text(*parts)
            for parts in zip(titles, col("category"), col("brand"), col("description"), strict=True)
        ]

        # User features: every extra column of users is a segment dimension.
        seg = users_df.set_index("user_id").reindex(user_ids)
        user_features: dict[str, np.ndarray] = {}
        user_feature_names: dict[str, list[str]] = {}
        for c in seg.columns:
            user_features[c], user_feature_names[c] = _codes(seg[c])

        data = cls(
            user_ids=user_ids.astype(str),
            item_ids=item_ids.astype(str),
            matrix=matrix,
            last_ts=last_ts,
            item_pop=item_pop,
            item_weight=item_weight,
            item_category=category,
            category_names=category_names,
            item_brand=brand,
            brand_names=brand_names,
            item_price_band=price_band,
            item_titles=titles,
            item_texts=texts,
            user_features=user_features,
            user_feature_names=user_feature_names,
            weights=w,
            event_pair=event_pair,
            event_ts=event_ts,
            event_weight=event_weight,
        )
        if text_encoder is not None:
            name, encode = text_encoder
            data = data.with_text(encode(data.item_texts), name)
        return data

    @classmethod
    def from_split(
        cls,
        split: Split,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        *,
        repeat_domain: bool = False,
        **kwargs: Any,
    ) -> InteractionData:
        """Build on an evaluation split: train events only; test and cold users in the vocab.
        ``repeat_domain``: the dataset's flag (:attr:`repeat_domain`)."""
        extra = set(split.test["user_id"].astype(str)) | {str(u) for u in split.cold_users}
        data = cls.from_frame(split.train, items, users, extra_users=sorted(extra), **kwargs)
        data.split = split
        data.repeat_domain = repeat_domain
        return data

    @classmethod
    def from_store(
        cls,
        con: Any,
        split_config: SplitConfig | None = None,
        **kwargs: Any,
    ) -> InteractionData:
        """Build from a dataset connection (:func:`ltrec.store.connect`) on the evaluation split.

        The split (:func:`ltrec.evaluation.split.store_split`) and the matrix
        (:meth:`from_query`) are computed by DuckDB: the same data as
        ``from_split(temporal_split(load_events(con), config), *load_catalogue(con))``, in
        memory that grows with the pairs, not with the events (10M events: about 1.7M pairs).

        Args:
            con: a read-only store connection.
            split_config: how to split (default: the dataset's own, :func:`default_split`:
                last 20% by time, every interaction type as a target, seen items kept in
                repeat-purchase domains).
            **kwargs: passed to :meth:`from_query` (``weights``, ``text_encoder``).
        """
        # lazy: keeps duckdb and the store (+0.4 s CPU) off `import ltrec.models`
        from ltrec.evaluation.split import VALID_EVENT, default_split, store_split

        # lazy: keeps duckdb and the store (+0.4 s CPU) off `import ltrec.models`
        from ltrec.store import read_meta

        # lazy: keeps duckdb and the store (+0.4 s CPU) off `import ltrec.models`
        from ltrec.store.profile import is_repeat_domain

        meta = read_meta(con)
        config = split_config or default_split(meta)
        split = store_split(con, config)
        if config.last_n is not None:  # per-user cut-offs: split in pandas (store_split says)
            items, users = load_catalogue(con)
            repeat = is_repeat_domain(meta)
            return cls.from_split(split, items, users, repeat_domain=repeat, **kwargs)
        cut = split.cutoff.to_pydatetime()
        targets = list(config.target_events)
        late = (
            f"{VALID_EVENT} AND ts >= ? AND event_type IN (" + ", ".join("?" for _ in targets) + ")"
        )
        data = cls.from_query(
            con,
            f"{VALID_EVENT} AND ts < ?",
            [cut],
            extra_users=(late, [cut, *targets]),
            **kwargs,
        )
        data.split = split
        data.repeat_domain = is_repeat_domain(meta)
        return data

    @classmethod
    def from_query(
        cls,
        con: Any,
        where: str,
        params: Sequence[Any] = (),
        *,
        extra_users: tuple[str, Sequence[Any]] | None = None,
        weights: Mapping[str, float] | None = None,
        text_encoder: tuple[str, TextEncoder] | None = None,
    ) -> InteractionData:
        """Build from the store's events that ``where`` selects, aggregated by DuckDB.

        The same data as :meth:`from_frame` of those events (and the ``items`` / ``users``
        tables): the vocabularies are distinct ids, the pairs a ``GROUP BY`` (summed weight,
        last time), and only the events with a positive weight come out, as four numeric
        arrays (for :meth:`decayed_matrix`).

        Args:
            con: a store connection (or a DuckDB connection with the canonical tables).
            where: SQL condition on ``events`` (fixed text; values as ``?`` in ``params``).
            extra_users: ``(condition, params)``: users of the events it selects join the
                vocabulary (the test and cold users of a split).
            weights / text_encoder: as in :meth:`from_frame`.
        """
        # lazy: keeps duckdb and the store (+0.4 s CPU) off `import ltrec.models`
        from ltrec.evaluation.split import _store_cursor

        w = _weights(weights)
        ids = "user_id IS NOT NULL AND item_id IS NOT NULL"
        cond = f"({ids}) AND ({where})"
        params = list(params)
        items, users = load_catalogue(con)
        items_df, users_df = _catalogue_frames(items, users)
        cur = _store_cursor(con)
        try:
            user_sql = f"SELECT DISTINCT user_id FROM events WHERE {cond}"  # noqa: S608
            user_params = list(params)
            if extra_users is not None:
                user_sql += f" UNION SELECT DISTINCT user_id FROM events WHERE {extra_users[0]}"  # noqa: S608
                user_params += list(extra_users[1])
            event_users = {str(r[0]) for r in cur.execute(user_sql, user_params).fetchall()}
            user_ids = np.array(
                sorted(set(users_df["user_id"].tolist()) | event_users), dtype=object
            )
            event_items = cur.execute(
                f"SELECT DISTINCT item_id FROM events WHERE {cond}",  # noqa: S608
                params,
            ).fetchall()
            item_ids = np.array(
                sorted(set(items_df["item_id"].tolist()) | {str(r[0]) for r in event_items}),
                dtype=object,
            )
            cur.register(
                "_ltrec_uv", pd.DataFrame({"user_id": user_ids, "u": np.arange(len(user_ids))})
            )
            cur.register(
                "_ltrec_iv", pd.DataFrame({"item_id": item_ids, "i": np.arange(len(item_ids))})
            )
            positive = {t: v for t, v in w.items() if v > 0}
            cur.register(
                "_ltrec_w",
                pd.DataFrame(
                    {"event_type": list(positive), "w": np.array(list(positive.values()), float)}
                ),
            )
            selected = f"SELECT user_id, item_id, event_type, ts FROM events WHERE {cond}"  # noqa: S608
            joined = (
                f"FROM ({selected}) e "
                "JOIN _ltrec_uv v ON v.user_id = e.user_id "
                "JOIN _ltrec_iv c ON c.item_id = e.item_id "
                "JOIN _ltrec_w x ON x.event_type = e.event_type"
            )
            agg = cur.execute(
                "SELECT v.u, c.i, sum(x.w) AS w, max(coalesce(epoch_us(e.ts), 0)) AS t "  # noqa: S608
                f"{joined} GROUP BY v.u, c.i ORDER BY v.u, c.i",
                params,
            ).fetchnumpy()
            ev = cur.execute(
                f"SELECT v.u, c.i, x.w, coalesce(epoch_us(e.ts), 0) AS t {joined} ORDER BY e.ts",  # noqa: S608
                params,
            ).fetchnumpy()
        finally:
            cur.close()
        n_items = len(item_ids)
        rows = np.asarray(agg["u"], dtype=np.int64)
        cols = np.asarray(agg["i"], dtype=np.int64)
        pair_key = rows * n_items + cols
        event_key = np.asarray(ev["u"], dtype=np.int64) * n_items + np.asarray(ev["i"], np.int64)
        pairs = _Pairs(
            rows=rows,
            cols=cols.astype(np.int32),
            weight=np.asarray(agg["w"], dtype=np.float64),
            last=_epoch_seconds(agg["t"]),
            event_pair=np.searchsorted(pair_key, event_key),
            event_ts=_epoch_seconds(ev["t"]),
            event_weight=np.asarray(ev["w"], dtype=np.float32),
        )
        return cls._assemble(user_ids, item_ids, pairs, items_df, users_df, w, text_encoder)


def _catalogue_frames(
    items: pd.DataFrame | None, users: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``items`` and ``users`` frames with text ids, first row per id."""
    items_df = (
        items.copy() if items is not None else pd.DataFrame({"item_id": pd.Series([], dtype=str)})
    )
    items_df["item_id"] = items_df["item_id"].astype(str)
    users_df = (
        users.copy() if users is not None else pd.DataFrame({"user_id": pd.Series([], dtype=str)})
    )
    users_df["user_id"] = users_df["user_id"].astype(str)
    return items_df.drop_duplicates("item_id"), users_df.drop_duplicates("user_id")


def load_catalogue(con: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``items`` and ``users`` tables of a store connection as DataFrames."""
    # lazy: keeps duckdb and the store (+0.4 s CPU) off `import ltrec.models`
    from ltrec.store import cursor

    try:
        cur = cursor(con)
    except Exception:  # a plain DuckDB connection (tests, notebooks): use it as it is
        cur = con.cursor()
    try:
        items = cur.execute("SELECT * FROM items ORDER BY item_id").df()
        users = cur.execute("SELECT * FROM users ORDER BY user_id").df()
    finally:
        cur.close()
    return items, users
