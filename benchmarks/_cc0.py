"""The real CC0 Complete Journey sample, shared by the benchmarks that run on it."""

from __future__ import annotations

from pathlib import Path

#: ../shared/datasets/completejourney beside the repository (read-only).
CJ = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "completejourney"


def import_cc0(name: str = "cj", root: Path = CJ) -> None:
    """Import the sample as dataset ``name`` (preset ``completejourney``, replacing it) into
    ``$LTREC_DATA_DIR``: transactions as events, products as items, demographics as users."""
    from ltrec.store.importer import import_dataset

    import_dataset(
        name,
        root / "transactions_sample.parquet",
        root / "products_in_transactions_sample.csv",
        root / "demographics.csv",
        preset="completejourney",
        replace=True,
    )
