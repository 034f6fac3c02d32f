"""Domain errors. Each message says what is wrong and what to do about it.

The CLI maps :class:`BadInputError` to exit code 2 and anything else to 1; pages show
``str(err)`` with ``st.error``, never a traceback.
"""

from __future__ import annotations


class LtrecError(Exception):
    """Base of every error ltrec raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n{hint}")


class BadInputError(LtrecError):
    """The user's input (file, option, name) is wrong; nothing was changed."""

    exit_code = 2


class ColumnNotFoundError(BadInputError):
    """A required column is missing from an input file."""

    def __init__(self, column: str, field: str, available: list[str]) -> None:
        shown = ", ".join(available[:30]) + (" ..." if len(available) > 30 else "")
        super().__init__(
            f"column '{column}' not found; columns are: {shown}",
            hint=f"use --map {field}=<column> to say which column holds {field}",
        )
        self.column, self.field, self.available = column, field, available


class BadIdError(BadInputError):
    """A user or item id breaks the id rule (:mod:`ltrec.ids`): missing, a control character
    inside, or too long. ``field`` names where it was (``user_id``, ``user_ids[3]``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class TooManyRejectsError(BadInputError):
    """More rows were rejected than the caller allows; nothing landed."""

    def __init__(self, summary: str, share: float, limit: float, report: object = None) -> None:
        super().__init__(
            f"{summary}; that is {share:.1%} of the rows, above the limit of {limit:.1%}. "
            "Nothing was imported.",
            hint=f"fix the file, or pass --max-reject-share {min(1.0, share + 0.005):.3f} "
            "to import the valid rows and keep the rest in the rejects table",
        )
        self.share, self.limit, self.report = share, limit, report


class DatasetNotFoundError(BadInputError):
    """The named dataset does not exist in the data directory."""

    def __init__(self, name: str, available: list[str], *, external: bool = False) -> None:
        if external:  # listed by `ltrec datasets`, so "not found" would mislead
            super().__init__(
                f"dataset '{name}' is an external dataset (read in place from {name}.toml); "
                "this needs a local store",
                hint=f"make a local sample with `ltrec sample {name}` and use '{name}-sample'; "
                "a dataset on Spark trains and exports with `--engine spark`",
            )
        else:
            have = ", ".join(available) if available else "none yet"
            super().__init__(
                f"dataset '{name}' not found (datasets: {have})",
                hint="build the demo shop with `ltrec demo`, or import data with `ltrec import`",
            )
        self.name = name


class StoreBusyError(LtrecError):
    """Another process is writing to the same dataset (after waiting ``lock_wait_s``)."""

    exit_code = 2  # nothing was changed; the same command works once the other writer is done

    def __init__(self, name: str, waited: float | None = None) -> None:
        after = f" (waited {waited:g} s)" if waited else ""
        super().__init__(
            f"dataset '{name}' is busy: it is being written by another import, delete or "
            f"training run{after}",
            hint="busy, try again when that run has finished (LTREC_LOCK_WAIT_S sets the wait)",
        )


class TrainingBusyError(LtrecError):
    """Another training run holds the dataset's training lock."""

    exit_code = 2  # nothing was changed: busy, try again when that run has finished

    def __init__(self, dataset: str) -> None:
        super().__init__(
            f"a model is already being trained on dataset '{dataset}'",
            hint="wait for that training run to finish, then try again",
        )


class StoreCorruptError(LtrecError):
    """A dataset file cannot be opened or lacks the ltrec schema."""


class ConfigError(BadInputError):
    """A configuration value (model, re-ranker, setting) is invalid."""


class NotFoundError(BadInputError):
    """A named thing (an experiment, ...) does not exist; the message names the known ones."""


class ModelError(LtrecError):
    """A model cannot be trained, scored or saved as asked."""


class MemoryLimitError(ModelError):
    """A model would not fit its memory budget: refused before the work, nothing changed.

    The message names the limit, the hint the remedy (fewer items, fewer factors, another
    model, or Spark)."""

    exit_code = 2


class RegistryError(LtrecError):
    """A saved model run is missing, incomplete, tampered with or foreign."""

    exit_code = 2  # a bad run id or a damaged run: nothing was changed


class StaleRunError(BadInputError):
    """A saved run was trained on data that has since changed (re-import, delete, new dataset).

    Refused unless the caller allows stale runs (``--allow-stale``, the Studio's checkbox).
    """
