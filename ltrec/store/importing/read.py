"""Looking at an input file before DuckDB reads it: format by content, header, whole-file errors.

Everything here runs before the dataset's write lock is taken and reads only the first bytes of
a file (plus one streaming pass over a gzip file to measure its uncompressed size), so a bad file
is refused in milliseconds with a message that says what is wrong and what to do.
"""

# SQL here is assembled from this module's own fragments: file column names never enter CSV
# SQL (columns are c0..cN), Parquet names and attribute names go through quote_ident, and every
# value from a file or a user is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import codecs
import csv
import gzip
import io
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from ltrec.errors import BadInputError
from ltrec.store.schema import quote_ident

_GZIP = b"\x1f\x8b"
_PARQUET = b"PAR1"
_OTHER_MAGIC = {
    b"PK\x03\x04": "a zip archive (or an Excel .xlsx workbook): unzip it, or export the sheet "
    "as 'CSV UTF-8'",
    b"\x28\xb5\x2f\xfd": "zstd-compressed: decompress it (only gzip is read directly)",
    b"BZh": "bzip2-compressed: decompress it (only gzip is read directly)",
    b"\xfd7zXZ\x00": "xz-compressed: decompress it (only gzip is read directly)",
    b"\xd0\xcf\x11\xe0": "an old Excel .xls workbook: export the sheet as 'CSV UTF-8'",
    b"SQLite format 3\x00": "an SQLite database, not a CSV or Parquet file",
}
_DELIMS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_SNIFF_BYTES = 64 * 1024


class ReadConfig(BaseModel):
    """How input files are read. Bounded so an upload cannot ask for absurd limits.

    Attributes:
        delimiter: the CSV field separator (explicit; never guessed for reading).
        quote: the CSV quote character; a quote inside a quoted value is doubled.
        max_uncompressed_bytes: a gzip file that inflates beyond this is refused.
        max_gzip_ratio: a gzip file inflating more than this many times its size (once past
            ``gzip_ratio_floor`` bytes) is refused as a decompression bomb; real CSVs compress
            5-20x.
        gzip_ratio_floor: below this many uncompressed bytes the ratio is not checked.
    """

    model_config = ConfigDict(extra="forbid")

    delimiter: str = Field(",", min_length=1, max_length=1)
    quote: str = Field('"', min_length=1, max_length=1)
    max_uncompressed_bytes: int = Field(32 * 2**30, ge=1024, le=2**40)
    max_gzip_ratio: float = Field(100.0, ge=2.0, le=10_000.0)
    gzip_ratio_floor: int = Field(16 * 2**20, ge=0, le=2**34)


@dataclass
class SourceFile:
    """An input file that passed the whole-file checks.

    Attributes:
        role: ``events``, ``items`` or ``users``.
        path: where it is read from.
        label: the name shown in reports and stored in ``rejects.source_file``.
        kind: ``csv``, ``csv.gz`` or ``parquet``.
        columns: header names as in the file (whitespace stripped).
        delimiter: the CSV delimiter used.
    """

    role: str
    path: Path
    label: str
    kind: str
    columns: list[str]
    delimiter: str = ","
    quote: str = '"'
    size: int = 0
    uncompressed_size: int | None = None
    notes: list[str] = field(default_factory=list)

    def reader_sql(
        self, *, rid: bool = True, store_rejects: bool = True, fail_fast: bool = False
    ) -> str:
        """A DuckDB table expression yielding ``rid`` (1-based record number, if ``rid``) and
        VARCHAR columns ``c0..cN``. Parameters: ``$path`` (and ``$delim``, ``$quote`` for CSV).

        CSV: explicit dialect, no auto-detection, every column VARCHAR; malformed lines are
        stored in the temp tables named by :meth:`reject_tables` (``store_rejects``) or skipped,
        instead of failing the read; with ``fail_fast`` the first malformed line fails the
        read (a third faster on clean files: no reject bookkeeping). Column names from the file
        never appear in CSV SQL; for Parquet they are quoted with :func:`quote_ident`.
        """
        num = "row_number() OVER () AS rid, " if rid else ""
        if self.kind == "parquet":
            cols = ", ".join(
                f"CAST({quote_ident(c)} AS VARCHAR) AS c{i}" for i, c in enumerate(self.columns)
            )
            return f"(SELECT {num}{cols} FROM read_parquet($path))"
        types = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(self.columns)))
        compression = "gzip" if self.kind == "csv.gz" else "none"
        if fail_fast:
            errors = "ignore_errors=false"
        elif store_rejects:
            scan, table = self.reject_tables()
            errors = f"store_rejects=true, rejects_scan='{scan}', rejects_table='{table}'"
        else:
            errors = "ignore_errors=true"
        return (
            f"(SELECT {num}* FROM read_csv($path, "
            f"columns={{{types}}}, header=true, delim=$delim, quote=$quote, escape=$quote, "
            f"auto_detect=false, compression='{compression}', strict_mode=true, "
            f"null_padding=false, {errors}))"
        )

    def reject_tables(self) -> tuple[str, str]:
        return f"_imp_{self.role}_rscan", f"_imp_{self.role}_rerr"

    def params(self) -> dict[str, object]:
        if self.kind == "parquet":
            return {"path": str(self.path)}
        return {"path": str(self.path), "delim": self.delimiter, "quote": self.quote}


def _fail(src: str, message: str, hint: str | None = None) -> BadInputError:
    return BadInputError(f"{src}: {message}", hint=hint)


def _check_gzip(path: Path, label: str, cfg: ReadConfig) -> int:
    """Inflate the file in bounded chunks, counting bytes; refuse a bomb before it lands.

    Never holds more than a few MiB: output is capped per call (``max_length``) and discarded.
    Returns the uncompressed size.
    """
    size = path.stat().st_size
    total = 0
    chunk = 1 << 20
    with path.open("rb") as fh:
        dec = zlib.decompressobj(wbits=47)  # 32 + 15: gzip header, full window
        data = fh.read(chunk)
        while data:
            out = dec.decompress(data, chunk * 4)
            while True:
                total += len(out)
                if total > cfg.max_uncompressed_bytes or (
                    total > cfg.gzip_ratio_floor and total > cfg.max_gzip_ratio * size
                ):
                    raise _fail(
                        label,
                        f"inflates to more than {total:,} bytes from {size:,} bytes compressed "
                        f"(over {total / max(size, 1):,.0f}x); refused as a likely "
                        "decompression bomb",
                        hint="decompress it yourself and check it, then import the plain CSV",
                    )
                if not dec.unconsumed_tail:
                    break
                out = dec.decompress(dec.unconsumed_tail, chunk * 4)
            if dec.eof and dec.unused_data:  # a multi-member gzip file: next member
                rest = dec.unused_data
                dec = zlib.decompressobj(wbits=47)
                data = rest
                continue
            data = fh.read(chunk)
    return total


def _head_text(raw: bytes, label: str) -> str:
    """Decode the first bytes strictly as UTF-8 (a cut multi-byte character at the end is ok)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _fail(label, "is UTF-16 encoded", hint="save it as 'CSV UTF-8' and import again")
    try:
        text = codecs.getincrementaldecoder("utf-8")("strict").decode(raw, final=False)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _fail(
            label,
            f"is not valid UTF-8 (byte 0x{raw[exc.start]:02x} on line {line})",
            hint="save it as UTF-8 (in Excel: 'CSV UTF-8'; elsewhere e.g. iconv -f latin1 "
            "-t utf-8)",
        ) from None
    return text.removeprefix("\ufeff")


def _records(text: str, delim: str, quote: str, n: int) -> list[list[str]]:
    """The first ``n`` complete records of ``text`` (the last, possibly cut, line is dropped)."""
    lines = text.splitlines(keepends=True)
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]
    reader = csv.reader(io.StringIO("".join(lines)), delimiter=delim, quotechar=quote)
    out: list[list[str]] = []
    try:
        for row in reader:
            out.append(row)
            if len(out) >= n:
                break
    except csv.Error:
        pass
    return out


def sniff(
    path: Path | str, role: str, cfg: ReadConfig | None = None, label: str | None = None
) -> SourceFile:
    """Check a file as a whole and read its header. Raises :class:`BadInputError`.

    Format is decided by content (``PAR1`` magic for Parquet, ``1f 8b`` for gzip), never by the
    extension; a file named ``.parquet`` that is not Parquet is refused. For CSV, the delimiter
    is *given* (``cfg.delimiter``); the header is checked against the other common delimiters
    only to explain a wrong-delimiter file.
    """
    cfg = cfg or ReadConfig()
    path = Path(path)
    label = label or path.name
    if not path.exists():
        raise _fail(label, f"file not found ({path})")
    if not path.is_file():
        raise _fail(label, "is not a regular file")
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if not head.removeprefix(b"\xef\xbb\xbf").strip():
        raise _fail(label, "is empty", hint="export the data again; the file has no content")
    named_parquet = path.suffix.lower() in (".parquet", ".pq", ".parq")
    if head.startswith(_PARQUET):
        return _sniff_parquet(path, role, label, size)
    if named_parquet:
        raise _fail(
            label,
            f"is named like a Parquet file but is not Parquet (it starts with {head[:8]!r}, "
            "not the 'PAR1' marker)",
            hint="export it again as Parquet, or rename it to .csv if it is a CSV file",
        )
    for magic, what in _OTHER_MAGIC.items():
        if head.startswith(magic):
            raise _fail(label, f"is {what.split(':')[0]}", hint=what.partition(": ")[2] or None)
    kind, uncompressed = "csv", None
    if head.startswith(_GZIP):
        uncompressed = _check_gzip(path, label, cfg)
        try:
            with gzip.open(path, "rb") as gz:
                head = gz.read(_SNIFF_BYTES)
        except (OSError, EOFError) as exc:
            raise _fail(label, f"is a damaged gzip file ({exc})") from None
        if not head.removeprefix(b"\xef\xbb\xbf").strip():
            raise _fail(label, "is empty once decompressed")
        kind = "csv.gz"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _fail(label, "is UTF-16 encoded", hint="save it as 'CSV UTF-8' and import again")
    if b"\x00" in head:
        raise _fail(label, "looks binary (it contains NUL bytes), not like a CSV text file")
    text = _head_text(head, label)
    records = _records(text, cfg.delimiter, cfg.quote, 3)
    if not records:
        raise _fail(label, "has no complete first line (header)")
    header = [c.strip() for c in records[0]]
    if len(header) == 1:
        _explain_delimiter(label, text, cfg)
    if all(not c for c in header):
        raise _fail(label, "has an empty header line", hint="the first line must name the columns")
    return SourceFile(
        role=role,
        path=path,
        label=label,
        kind=kind,
        columns=header,
        delimiter=cfg.delimiter,
        quote=cfg.quote,
        size=size,
        uncompressed_size=uncompressed,
    )


def _explain_delimiter(label: str, text: str, cfg: ReadConfig) -> None:
    """A one-column header: if another delimiter splits it consistently, say so."""
    for delim, word in _DELIMS.items():
        if delim == cfg.delimiter:
            continue
        recs = _records(text, delim, cfg.quote, 3)
        widths = {len(r) for r in recs if r}
        if recs and len(recs[0]) >= 2 and len(widths) == 1:
            shown = "\\t" if delim == "\t" else delim
            expected = _DELIMS.get(cfg.delimiter, repr(cfg.delimiter))
            raise _fail(
                label,
                f"looks {word}-separated ('{shown}'), but the {expected} delimiter was expected "
                f"(the header reads as one column: {recs[0][:1][0][:60]!r}...)",
                hint=f"pass --delimiter '{shown}', or save the file with {expected}s",
            )


def _sniff_parquet(path: Path, role: str, label: str, size: int) -> SourceFile:
    con = duckdb.connect()
    try:
        rows = con.execute("DESCRIBE SELECT * FROM read_parquet($path)", {"path": str(path)})
        columns = [r[0] for r in rows.fetchall()]
    except duckdb.Error as exc:
        raise _fail(
            label,
            f"starts like Parquet but cannot be read ({str(exc).splitlines()[0][:200]})",
            hint="the file may be truncated; export it again",
        ) from None
    finally:
        con.close()
    if not columns:
        raise _fail(label, "has no columns")
    return SourceFile(role=role, path=path, label=label, kind="parquet", columns=columns, size=size)
