"""What an import is told (:class:`ImportConfig`) and what it tells back (:class:`ImportReport`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ConfigDict, Field

from ltrec.config import MAX_REJECT_SHARE, ConfigBase
from ltrec.store.importing.presets import RATING_PURCHASE_MIN
from ltrec.store.importing.read import ReadConfig


class ImportConfig(ConfigBase):
    """Knobs of the import; the defaults are what the CLI uses.

    Attributes:
        read: how files are read (delimiter, gzip limits).
        rating_purchase_min: ratings preset: a rating at or above this also counts as a purchase.
        future_slack_hours: a timestamp later than now plus this is out of range.
        ts_sample: values sampled per file to detect the timestamp format.
        sample_rejects: rejected rows returned in the report (at most 3 per reason first).
        event_map: event value -> event type, or ``drop`` to leave those rows out
            (``--event-map fav=cart``); over the preset's ``event_defaults``. A value no alias
            and no mapping knows is a reject, ``unknown event type 'fav'``.
    """

    model_config = ConfigDict(frozen=False)

    read: ReadConfig = Field(default_factory=ReadConfig)
    rating_purchase_min: float = Field(RATING_PURCHASE_MIN, ge=-1e9, le=1e9)
    future_slack_hours: float = Field(24.0, ge=0.0, le=24.0 * 366)
    ts_sample: int = Field(2000, ge=10, le=100_000)
    sample_rejects: int = Field(20, ge=0, le=1000)
    event_map: dict[str, str] = Field(default_factory=dict, max_length=1000)


@dataclass
class ImportReport:
    """What an import read, loaded and rejected. ``to_dict`` keys are a public interface."""

    dataset: str
    preset: str
    preset_guessed: bool
    dry_run: bool
    committed: bool = False
    import_id: str = ""
    files: dict[str, str] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)
    #: per file: how it was read (delimiter, quote, encoding, header, detected notes)
    dialects: dict[str, dict[str, Any]] = field(default_factory=dict)
    mapping: dict[str, str] = field(default_factory=dict)
    ts_formats: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, list[str]] = field(default_factory=dict)
    dropped_columns: dict[str, list[str]] = field(default_factory=dict)
    rows_read_by_file: dict[str, int] = field(default_factory=dict)
    rows_loaded: dict[str, int] = field(default_factory=dict)
    new_rows: dict[str, int] = field(default_factory=dict)
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    #: reason -> its :class:`~ltrec.store.importing.codes.RejectCode` value
    reason_codes: dict[str, str] = field(default_factory=dict)
    rejects_by_code: dict[str, int] = field(default_factory=dict)
    #: event values no alias and no mapping knows (rejected rows), with their row counts
    unknown_event_types: dict[str, int] = field(default_factory=dict)
    #: event values mapped to ``drop``, with the rows left out (not rejects)
    dropped_event_types: dict[str, int] = field(default_factory=dict)
    #: the event value mapping in force (preset defaults and ``--event-map``)
    event_map: dict[str, str] = field(default_factory=dict)
    #: the dataset profile (:class:`ltrec.store.profile.DatasetProfile` as a dict): after a
    #: commit the dataset's, after a dry run what the dataset would be with this import alone
    profile: dict[str, Any] | None = None
    sample_rejects: list[dict[str, Any]] = field(default_factory=list)
    max_reject_share: float = MAX_REJECT_SHARE
    seconds: float = 0.0
    pseudonymized: bool = False

    @property
    def rows_read(self) -> int:
        return sum(self.rows_read_by_file.values())

    @property
    def rejected(self) -> int:
        return sum(self.rejects_by_reason.values())

    @property
    def reject_share(self) -> float:
        return self.rejected / self.rows_read if self.rows_read else 0.0

    def reject_summary(self, top: int = 6) -> str:
        """``1,203 rows rejected: 1,100 missing item_id, 103 unparseable timestamp``."""
        if not self.rejected:
            return "no rows rejected"
        parts = [f"{n:,} {r}" for r, n in list(self.rejects_by_reason.items())[:top]]
        more = len(self.rejects_by_reason) - top
        if more > 0:
            parts.append(f"{more} more reason{'s' if more > 1 else ''}")
        noun = "row" if self.rejected == 1 else "rows"
        return f"{self.rejected:,} {noun} rejected: " + ", ".join(parts)

    def event_map_hint(self) -> str:
        """What to do about :attr:`unknown_event_types` (empty when there are none)."""
        if not self.unknown_event_types:
            return ""
        listed = ", ".join(
            f"'{v}' ({n:,} row{'' if n == 1 else 's'})" for v, n in self.unknown_event_types.items()
        )
        first = next(iter(self.unknown_event_types))
        return (
            f"Event types no alias maps: {listed}. Map each with --event-map VALUE=TYPE "
            f"(e.g. --event-map {first}=cart), or --event-map {first}=drop to leave those rows "
            "out."
        )

    def summary(self) -> str:
        loaded = ", ".join(
            f"{self.rows_loaded.get(t, 0):,} {t}" for t in ("events", "items", "users")
        )
        if self.dry_run:
            head = f"Dry run, nothing written: '{self.dataset}' would get {loaded}"
        elif self.committed:
            head = f"Imported into '{self.dataset}': {loaded}"
        else:
            head = f"Nothing imported into '{self.dataset}'"
        how = "guessed" if self.preset_guessed else "preset"
        lines = [
            f"{head} ({how} {self.preset}; {self.rows_read:,} rows read in {self.seconds:.1f}s).",
            self.reject_summary()[0].upper() + self.reject_summary()[1:] + ".",
        ]
        if self.dropped_event_types:
            n = sum(self.dropped_event_types.values())
            lines.append(
                f"{n:,} {'row' if n == 1 else 'rows'} left out by the event map: "
                + ", ".join(f"{v!r} ({k:,})" for v, k in self.dropped_event_types.items())
                + "."
            )
        if self.unknown_event_types:
            lines.append(self.event_map_hint())
        if self.rejected and self.committed:
            lines.append("Rejected rows are in the dataset's rejects table.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "committed": self.committed,
            "dry_run": self.dry_run,
            "import_id": self.import_id,
            "preset": self.preset,
            "preset_guessed": self.preset_guessed,
            "files": self.files,
            "formats": self.formats,
            "dialects": self.dialects,
            "mapping": self.mapping,
            "ts_formats": self.ts_formats,
            "attributes": self.attributes,
            "dropped_columns": self.dropped_columns,
            "rows_read": self.rows_read,
            "rows_read_by_file": self.rows_read_by_file,
            "rows_loaded": self.rows_loaded,
            "new_rows": self.new_rows,
            "rejected": self.rejected,
            "reject_share": self.reject_share,
            "max_reject_share": self.max_reject_share,
            "rejects_by_reason": self.rejects_by_reason,
            "reason_codes": self.reason_codes,
            "rejects_by_code": self.rejects_by_code,
            "unknown_event_types": self.unknown_event_types,
            "dropped_event_types": self.dropped_event_types,
            "event_map": self.event_map,
            "profile": self.profile,
            "sample_rejects": self.sample_rejects,
            "summary": self.reject_summary(),
            "seconds": round(self.seconds, 3),
            "pseudonymized": self.pseudonymized,
        }
