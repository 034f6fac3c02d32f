"""Precomputed item vectors (image embeddings and the like, made elsewhere), beside the text ones.

``ltrec import-vectors NAME --file vectors.parquet [--name image]`` reads a Parquet file with an
item id column (``item_id``) and one list-of-floats column (fixed-size or not; ``--column``
picks one when there are several), validates every row, and stores the valid ones in

    item_vectors(name VARCHAR, item_id VARCHAR, vec FLOAT[], PRIMARY KEY (name, item_id))

replacing any earlier set of the same name; ``meta['item_vectors.<name>']`` holds its
dimension and counts. A row is rejected, with its reason in ``rejects``, when its item id is
missing, the item is in neither ``items`` nor ``events`` (unknown item), its vector is missing,
has another dimension than the file's (the most common length), holds a NaN, an infinity or a
null, is all zeros (it has no direction), or repeats an item id. Above ``max_reject_share``
nothing lands (:class:`~ltrec.errors.TooManyRejectsError`), as in the event import.

How the models use them (:func:`with_item_vectors`, called where the text embeddings are
loaded): the item content vector becomes the concatenation of L2-normalised blocks, the text
embedding and each stored vector set (sorted by name), each divided by sqrt(number of blocks):

    e_i = [t_i / |t_i|, v_i / |v_i|, ...] / sqrt(B)

so |e_i| = 1 and cos(e_i, e_j) = mean over blocks of the per-block cosines. An item without a
vector in a set gets a zero block there (it is then judged on its other blocks). The content
models (two-tower, NCF) read this matrix as their text input, and MMR and the Studio's
explanations use it as the item similarity.
"""

# SQL here uses fixed table names and quote_ident'd column names; values are bound.
# ruff: noqa: S608

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from ltrec.config import MAX_REJECT_SHARE
from ltrec.errors import BadInputError, DatasetNotFoundError, TooManyRejectsError
from ltrec.ids import CONTROL_ID, id_sql
from ltrec.store.connect import (
    check_name,
    connect,
    dataset_path,
    list_datasets,
    scalar,
    write_meta,
    writing,
)
from ltrec.store.finalize import finalize
from ltrec.store.importing import sniff
from ltrec.store.schema import quote_ident

DDL = (
    "CREATE TABLE IF NOT EXISTS item_vectors ("
    "name VARCHAR, item_id VARCHAR, vec FLOAT[], PRIMARY KEY (name, item_id))"
)
META_PREFIX = "item_vectors."
MAX_DIM = 8192
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_FLOAT_LIST = re.compile(r"^(FLOAT|DOUBLE|DECIMAL\(\d+,\d+\)|REAL)(\[\d*\])$")


def check_vector_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise BadInputError(
            f"invalid vector set name {name!r}",
            hint="use 1-32 lower-case letters, digits or '_', starting with a letter (e.g. image)",
        )
    return name


@dataclass
class VectorReport:
    """What an item-vector import did. ``to_dict`` keys are a public interface."""

    dataset: str
    name: str
    file: str
    dim: int = 0
    rows_read: int = 0
    loaded: int = 0
    items_without_vector: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    sample_rejects: list[dict[str, Any]] = field(default_factory=list)
    import_id: str = ""
    committed: bool = False
    seconds: float = 0.0

    @property
    def rejected(self) -> int:
        return sum(self.rejects_by_reason.values())

    @property
    def reject_share(self) -> float:
        return self.rejected / self.rows_read if self.rows_read else 0.0

    def reject_summary(self) -> str:
        if not self.rejected:
            return "no rows rejected"
        parts = ", ".join(f"{n:,} {r}" for r, n in self.rejects_by_reason.items())
        return f"{self.rejected:,} row{'s' if self.rejected != 1 else ''} rejected: {parts}"

    def summary(self) -> str:
        return (
            f"Stored {self.loaded:,} '{self.name}' vectors ({self.dim} dimensions) in "
            f"'{self.dataset}' from {self.file}; {self.items_without_vector:,} catalogue items "
            f"have none. {self.reject_summary()[0].upper()}{self.reject_summary()[1:]}."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "name": self.name,
            "file": self.file,
            "dim": self.dim,
            "rows_read": self.rows_read,
            "loaded": self.loaded,
            "items_without_vector": self.items_without_vector,
            "rejected": self.rejected,
            "reject_share": self.reject_share,
            "rejects_by_reason": self.rejects_by_reason,
            "sample_rejects": self.sample_rejects,
            "import_id": self.import_id,
            "committed": self.committed,
            "seconds": round(self.seconds, 3),
        }


def _columns(path: Path) -> list[tuple[str, str]]:
    con = duckdb.connect()
    try:
        return [
            (r[0], r[1])
            for r in con.execute(
                "DESCRIBE SELECT * FROM read_parquet($p)", {"p": str(path)}
            ).fetchall()
        ]
    finally:
        con.close()


def _pick_columns(
    cols: list[tuple[str, str]], label: str, id_column: str, column: str | None
) -> tuple[str, str]:
    names = [c for c, _ in cols]
    if id_column not in names:
        raise BadInputError(
            f"{label}: no item id column {id_column!r}; columns are: {', '.join(names[:30])}",
            hint="name it item_id, or pass --id-column",
        )
    lists = [c for c, t in cols if _FLOAT_LIST.match(t)]
    if column is not None:
        typ = dict(cols).get(column)
        if typ is None:
            raise BadInputError(f"{label}: no column {column!r}; columns are: {', '.join(names)}")
        if not _FLOAT_LIST.match(typ):
            raise BadInputError(f"{label}: column {column!r} is {typ}, not a list of floats")
        return id_column, column
    if len(lists) != 1:
        what = "no list-of-floats column" if not lists else f"several: {', '.join(lists)}"
        raise BadInputError(
            f"{label}: needs exactly one vector column (a list of floats), found {what}",
            hint="pass --column to say which column holds the vectors",
        )
    return id_column, lists[0]


def import_vectors(
    dataset: str,
    file: Path | str,
    name: str = "image",
    *,
    id_column: str = "item_id",
    column: str | None = None,
    max_reject_share: float = MAX_REJECT_SHARE,
    data_dir: Path | str | None = None,
    label: str | None = None,
    sample: int = 20,
) -> VectorReport:
    """Validate and store an item vector file in ``dataset`` (all or nothing; see the module).

    Raises:
        DatasetNotFoundError: the dataset does not exist (vectors need a catalogue).
        BadInputError: not Parquet, no id or vector column, no valid dimension.
        TooManyRejectsError: more than ``max_reject_share`` of the rows rejected.
    """
    start = time.perf_counter()
    check_name(dataset)
    check_vector_name(name)
    if not 0.0 <= max_reject_share <= 1.0:
        raise BadInputError(f"--max-reject-share must be between 0 and 1, got {max_reject_share}")
    if not dataset_path(dataset, data_dir).is_file():
        raise DatasetNotFoundError(dataset, list_datasets(data_dir))
    src = sniff(file, "vectors", label=label)
    if src.kind != "parquet":
        raise BadInputError(
            f"{src.label}: item vectors must be a Parquet file (item_id + a list of floats)",
            hint="write it with pandas/pyarrow: df.to_parquet('vectors.parquet')",
        )
    id_col, vec_col = _pick_columns(_columns(src.path), src.label, id_column, column)
    rep = VectorReport(dataset=dataset, name=name, file=src.label, import_id=uuid.uuid4().hex)
    params = {"path": str(src.path)}
    try:
        with writing(dataset, data_dir) as con:
            con.execute(DDL)
            con.execute(
                f"""CREATE TEMP TABLE _vec AS
                SELECT row_number() OVER () AS rid,
                       {id_sql(f"CAST({quote_ident(id_col)} AS VARCHAR)")} AS item_id,
                       CAST({quote_ident(vec_col)} AS DOUBLE[]) AS v
                FROM read_parquet($path)""",
                params,
            )
            rep.rows_read = scalar(con.execute("SELECT count(*) FROM _vec"))
            if rep.rows_read == 0:
                raise BadInputError(f"{src.label}: has no rows")
            dims = con.execute(
                "SELECT len(v) AS d, count(*) AS n FROM _vec WHERE v IS NOT NULL AND len(v) > 0 "
                "GROUP BY d ORDER BY n DESC, d LIMIT 1"
            ).fetchone()
            if dims is None:
                raise BadInputError(f"{src.label}: no row has a vector")
            rep.dim = int(dims[0])
            if rep.dim > MAX_DIM:
                raise BadInputError(f"{src.label}: {rep.dim} dimensions; at most {MAX_DIM}")
            con.execute(
                f"""CREATE TEMP TABLE _vec_r AS
                SELECT rid, item_id, v, CASE
                    WHEN item_id IS NULL THEN 'missing item_id'
                    WHEN item_id = {CONTROL_ID} THEN 'control character in item_id'
                    WHEN v IS NULL OR len(v) = 0 THEN 'missing vector'
                    WHEN len(v) <> $dim THEN 'wrong dimension (' || len(v) || ', expected '
                         || $dim || ')'
                    WHEN list_count(v) < len(v) THEN 'null value in vector'
                    WHEN len(list_filter(v, lambda x: isnan(x))) > 0 THEN 'NaN in vector'
                    WHEN len(list_filter(v, lambda x: isinf(x))) > 0 THEN 'infinite value in vector'
                    WHEN len(list_filter(v, lambda x: abs(x) > 3.4e38)) > 0
                        THEN 'value too large for float32'
                    WHEN len(list_filter(v, lambda x: x <> 0)) = 0 THEN 'all-zero vector'
                    WHEN NOT EXISTS (SELECT 1 FROM items i WHERE i.item_id = _vec.item_id)
                     AND NOT EXISTS (SELECT 1 FROM events e WHERE e.item_id = _vec.item_id)
                        THEN 'unknown item'
                    END AS reason
                FROM _vec""",
                {"dim": rep.dim},
            )
            con.execute(
                """UPDATE _vec_r SET reason = 'duplicate item_id' WHERE rid IN (
                    SELECT rid FROM (SELECT rid, row_number() OVER (
                        PARTITION BY item_id ORDER BY rid) AS k
                        FROM _vec_r WHERE reason IS NULL) WHERE k > 1)"""
            )
            rep.rejects_by_reason = dict(
                con.execute(
                    "SELECT reason, count(*) AS n FROM _vec_r WHERE reason IS NOT NULL "
                    "GROUP BY reason ORDER BY n DESC, reason"
                ).fetchall()
            )
            rep.sample_rejects = [
                {"file": src.label, "line": rid, "reason": r, "item_id": i}
                for rid, r, i in con.execute(
                    "SELECT rid, reason, item_id FROM _vec_r WHERE reason IS NOT NULL "
                    "QUALIFY row_number() OVER (PARTITION BY reason ORDER BY rid) <= 3 "
                    "ORDER BY rid LIMIT $n",
                    {"n": sample},
                ).fetchall()
            ]
            if rep.reject_share > max_reject_share:
                rep.seconds = time.perf_counter() - start
                raise TooManyRejectsError(
                    rep.reject_summary(), rep.reject_share, max_reject_share, rep
                )
            con.execute("DELETE FROM item_vectors WHERE name = $name", {"name": name})
            rep.loaded = scalar(
                con.execute(
                    "INSERT INTO item_vectors SELECT $name, item_id, CAST(v AS FLOAT[]) "
                    "FROM _vec_r WHERE reason IS NULL",
                    {"name": name},
                )
            )
            con.execute(
                "INSERT INTO rejects (import_id, source_file, line, reason, raw) "
                "SELECT $iid, $label, rid, reason, "
                "left(coalesce(item_id, '') || ': ' || coalesce(CAST(v AS VARCHAR), ''), 300) "
                "FROM _vec_r WHERE reason IS NOT NULL",
                {"iid": rep.import_id, "label": src.label},
            )
            rep.items_without_vector = scalar(
                con.execute(
                    "SELECT count(*) FROM (SELECT item_id FROM items UNION SELECT item_id "
                    "FROM events) c WHERE NOT EXISTS (SELECT 1 FROM item_vectors v "
                    "WHERE v.name = $name AND v.item_id = c.item_id)",
                    {"name": name},
                )
            )
            write_meta(
                con,
                {
                    META_PREFIX + name: json.dumps(
                        {
                            "dim": rep.dim,
                            "count": rep.loaded,
                            "file": src.label,
                            "import_id": rep.import_id,
                            "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
                        }
                    )
                },
            )
            con.execute("DROP TABLE _vec")
            con.execute("DROP TABLE _vec_r")
            finalize(con)
    except duckdb.Error as exc:
        raise BadInputError(
            f"{src.label}: cannot be read as item vectors ({str(exc).splitlines()[0][:200]})",
            hint="the file needs an item id column and a list-of-floats column",
        ) from exc
    rep.committed = True
    rep.seconds = time.perf_counter() - start
    return rep


# ----------------------------------------------------------------------------- reading


def _has_table(con: Any) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'item_vectors' "
            "AND database_name = current_database()"
        ).fetchone()[0]
    )


def vector_names(con: Any) -> list[str]:
    """Names of the item vector sets a store holds (sorted)."""
    if not _has_table(con):
        return []
    return [
        r[0] for r in con.execute("SELECT DISTINCT name FROM item_vectors ORDER BY 1").fetchall()
    ]


def load_item_vectors(con: Any, name: str, item_ids: Sequence[str]) -> np.ndarray:
    """The ``name`` vectors as float32 ``[len(item_ids), dim]``, row ``k`` for ``item_ids[k]``.

    Items without a vector get a zero row. Raises :class:`BadInputError` for an unknown set.
    """
    check_vector_name(name)
    if name not in vector_names(con):
        raise BadInputError(
            f"no item vectors named {name!r} in this dataset",
            hint="import them with `ltrec import-vectors DATASET --file FILE --name NAME`",
        )
    rows = con.execute(
        "SELECT item_id, vec FROM item_vectors WHERE name = $name", {"name": name}
    ).fetchall()
    dim = len(rows[0][1]) if rows else 0
    index = {str(i): k for k, i in enumerate(item_ids)}
    out = np.zeros((len(item_ids), dim), dtype=np.float32)
    for item, vec in rows:
        k = index.get(item)
        if k is not None:
            out[k] = vec
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def combine(blocks: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate row-normalised blocks, scaled by 1/sqrt(B): cosines average over blocks."""
    parts = [_unit(np.asarray(b, dtype=np.float32)) for b in blocks]
    return (np.hstack(parts) / np.sqrt(len(parts))).astype(np.float32)


def with_item_vectors(data: Any, dataset: str, data_dir: Path | str | None = None) -> Any:
    """``data`` (an ``InteractionData`` with text embeddings) with every stored item vector set
    appended to its content vectors (see the module docstring); unchanged when there are none.

    The hook the models' feature loading calls right after the text embeddings are filled.
    """
    if not dataset_path(dataset, data_dir).is_file():
        return data
    con = connect(dataset, data_dir)
    try:
        names = vector_names(con)
        sets = [load_item_vectors(con, n, list(data.item_ids)) for n in names]
    finally:
        con.close()
    if not sets:
        return data
    blocks = ([data.item_text_emb] if data.item_text_emb is not None else []) + sets
    label = "+".join([data.text_encoder or "no text", *(f"vectors:{n}" for n in names)])
    return data.with_text(combine(blocks), label)
