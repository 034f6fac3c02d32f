"""Looking at an input file before DuckDB reads it: format by content, dialect, header, limits.

Everything here runs before the dataset's write lock is taken. A CSV's dialect is sniffed **per
file** from its first bytes (plus its last 64 KiB, for line ends): delimiter (``,`` ``;`` tab
``|``), quote (``"`` or ``'``), encoding (UTF-8, with or without a BOM, else Latin-1), mixed
CRLF/LF line ends, and whether the first line is a header at all (a headerless behaviour log is
recognised by its shape). Each can be fixed per file (:class:`FileOptions`); a fixed value is
used as given. The header is read whole however long it is (bounded by ``max_header_bytes``),
so a 5,000-column header costs what its bytes cost.

Hostile files are refused here, before DuckDB reads a row:

* gzip: one bounded streaming pass over every member (CRC and length checked, each member
  counted against the size / ratio guard, so millions of empty members cannot stall a read);
  trailing zero padding after the last member is accepted, as ``gzip -d`` does (DuckDB reads a
  trimmed copy); trailing garbage, a bad CRC or a truncated member is a clear error.
* Parquet: the footer's declared sizes and row counts are checked first; then the longest and
  the total text of every text column are measured with ``strlen`` (cheap on dictionary-encoded
  pages: nothing is expanded), so a small file whose dictionary repeats a 10 MB string is refused
  before anything casts it. A column name with a control character (NUL ...) is refused.
"""

# SQL here is assembled from this module's own fragments: file column names never enter CSV
# SQL (columns are c0..cN), Parquet names go through quote_ident, and every value from a file or
# a user is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import os
import re
import struct
import tempfile
import weakref
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ltrec.config import ConfigBase
from ltrec.errors import BadInputError
from ltrec.store.connect import one_row
from ltrec.store.importing.presets import guess_headerless
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
_SNIFF_RECORDS = 20
_CHUNK = 1 << 20
_FEED = 1 << 14  # compressed bytes per decompress call

Role = Literal["events", "items", "users"]
Encoding = Literal["utf-8", "latin-1"]  # what DuckDB's read_csv decodes itself
ENCODINGS: tuple[str, ...] = ("utf-8", "latin-1")
_ENCODING_ALIASES = {
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "utf-8-sig": "utf-8",
    "latin1": "latin-1",
    "latin-1": "latin-1",
    "iso-8859-1": "latin-1",
    "iso8859-1": "latin-1",
    "l1": "latin-1",
}


def normalize_encoding(name: str) -> str:
    """``latin1``, ``ISO-8859-1`` -> ``latin-1``; ``utf8`` -> ``utf-8``; else an error."""
    enc = _ENCODING_ALIASES.get(name.strip().lower())
    if enc is None:
        raise BadInputError(
            f"unsupported encoding {name!r}",
            hint="use utf-8 or latin-1 (other encodings: convert first, e.g. iconv -t utf-8)",
        )
    return enc


class FileOptions(BaseModel):
    """How one file is read; ``None`` means sniffed from the file.

    Attributes:
        delimiter: the CSV field separator.
        quote: the CSV quote character; a quote inside a quoted value is doubled.
        encoding: ``utf-8`` or ``latin-1``.
        columns: the file has no header line; these name its columns, in order.
        no_header: the file has no header line; without ``columns`` its layout must be
            recognisable from the data (a behaviour log).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    delimiter: str | None = Field(None, min_length=1, max_length=1)
    quote: str | None = Field(None, min_length=1, max_length=1)
    encoding: Encoding | None = None
    columns: tuple[str, ...] | None = Field(None, min_length=1, max_length=100_000)
    no_header: bool = False

    @field_validator("encoding", mode="before")
    @classmethod
    def _encoding(cls, v: object) -> object:
        return normalize_encoding(v) if isinstance(v, str) else v

    @field_validator("columns")
    @classmethod
    def _columns(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return v
        names = tuple(c.strip() for c in v)
        if any(not c for c in names):
            raise ValueError("--columns has an empty column name")
        return names


class ReadConfig(ConfigBase):
    """How input files are read, and the limits a file must stay within. Bounded so an upload
    cannot ask for absurd limits.

    Attributes:
        delimiter, quote, encoding, no_header: for every file (``None``: sniffed per file).
        files: per-file options (``events``, ``items``, ``users``); a value set there wins over
            the one for every file.
        max_header_bytes: a header line longer than this is refused (5,000 columns of 100
            characters is 0.5 MiB).
        max_columns: a file with more columns is refused.
        max_uncompressed_bytes: a gzip file inflating beyond this, or a Parquet file declaring
            more uncompressed bytes or more text, is refused.
        max_gzip_ratio: a gzip file inflating more than this many times its size, or a Parquet
            file whose declared bytes or text are that many times its size (once past
            ``gzip_ratio_floor`` bytes) is refused as a decompression bomb; real CSVs compress
            5-20x.
        gzip_ratio_floor: below this many (counted) uncompressed bytes the ratio is not checked;
            past it, the ratio is to the compressed bytes read so far.
        gzip_member_cost: bytes each gzip member counts for in those checks on top of what it
            inflates to, so a file of millions of empty members is a bomb too.
        max_value_bytes: the longest text value a Parquet file may hold (a CSV line is bounded
            by DuckDB's 2 MB line limit).
        max_rows_per_byte: a Parquet file declaring more rows per byte of file (beyond 1M rows)
            is refused; real event files take a few bytes per row.
    """

    model_config = ConfigDict(frozen=False)

    delimiter: str | None = Field(None, min_length=1, max_length=1)
    quote: str | None = Field(None, min_length=1, max_length=1)
    encoding: Encoding | None = None
    no_header: bool = False
    files: dict[Role, FileOptions] = Field(default_factory=dict)
    max_header_bytes: int = Field(8 * 2**20, ge=_SNIFF_BYTES, le=2**28)
    max_columns: int = Field(20_000, ge=16, le=100_000)
    max_uncompressed_bytes: int = Field(32 * 2**30, ge=1024, le=2**40)
    max_gzip_ratio: float = Field(100.0, ge=2.0, le=10_000.0)
    gzip_ratio_floor: int = Field(16 * 2**20, ge=0, le=2**34)
    gzip_member_cost: int = Field(4096, ge=0, le=2**20)
    max_value_bytes: int = Field(2**20, ge=1024, le=2**28)
    max_rows_per_byte: float = Field(64.0, ge=1.0, le=1e6)

    @field_validator("encoding", mode="before")
    @classmethod
    def _encoding(cls, v: object) -> object:
        return normalize_encoding(v) if isinstance(v, str) else v

    def for_file(self, role: str) -> FileOptions:
        """The options for one file: its own, else the ones for every file."""
        own = self.files.get(role)  # type: ignore[call-overload]  # a Role; callers pass it as str
        if own is None:
            own = FileOptions()
        return FileOptions(
            delimiter=own.delimiter or self.delimiter,
            quote=own.quote or self.quote,
            encoding=own.encoding or self.encoding,
            columns=own.columns,
            no_header=own.no_header or self.no_header or own.columns is not None,
        )


@dataclass
class SourceFile:
    """An input file that passed the whole-file checks.

    Attributes:
        role: ``events``, ``items`` or ``users``.
        path: the file as given.
        label: the name shown in reports and stored in ``rejects.source_file``.
        kind: ``csv``, ``csv.gz`` or ``parquet``.
        columns: header names as in the file (whitespace stripped), or the given / recognised
            names of a headerless file.
        delimiter, quote, encoding: the CSV dialect used (sniffed or given).
        header: the first line is a header (not data).
        strict: DuckDB's strict CSV mode; off only for mixed CRLF/LF line ends, which strict
            mode cannot read.
        read_path: what DuckDB reads: ``path``, or a trimmed temporary copy of a gzip file with
            zero padding after its last member (removed when this object is dropped).
        notes: what was sniffed, in words, for reports.
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
    encoding: str = "utf-8"
    header: bool = True
    strict: bool = True
    read_path: Path | None = None

    @property
    def header_lines(self) -> int:
        """Lines before the first record (for turning record numbers into file lines)."""
        return 1 if self.header else 0

    def reader_sql(
        self,
        *,
        rid: bool = True,
        store_rejects: bool = True,
        fail_fast: bool = False,
        head: bool = False,
    ) -> str:
        """A DuckDB table expression yielding ``rid`` (1-based record number, if ``rid``) and
        VARCHAR columns ``c0..cN``. Parameters: ``$path`` (and ``$delim``, ``$quote`` for CSV).

        CSV: explicit dialect, no auto-detection, every column VARCHAR; malformed lines are
        stored in the temp tables named by :meth:`reject_tables` (``store_rejects``) or skipped,
        instead of failing the read; with ``fail_fast`` the first malformed line fails the
        read (a third faster on clean files: no reject bookkeeping). Column names from the file
        never appear in CSV SQL; for Parquet they are quoted with :func:`quote_ident`. ``head``:
        for a read that stops early (``LIMIT``): one thread, so DuckDB does not parse a buffer
        per thread ahead of the rows it needs (half the time of a sample on a wide file).
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
        # encoding and flags are this module's constants (ENCODINGS), never user text
        return (
            f"(SELECT {num}* FROM read_csv($path, "
            f"columns={{{types}}}, header={str(self.header).lower()}, delim=$delim, "
            f"quote=$quote, escape=$quote, encoding='{self.encoding}', auto_detect=false, "
            f"compression='{compression}', strict_mode={str(self.strict).lower()}, "
            f"null_padding=false, {errors}{', parallel=false' if head else ''}))"
        )

    def dialect(self) -> dict[str, object]:
        """How the file was read, for reports (``dialects`` in the import report)."""
        if self.kind == "parquet":
            return {"notes": list(self.notes)}
        return {
            "delimiter": self.delimiter,
            "quote": self.quote,
            "encoding": self.encoding,
            "header": self.header,
            "notes": list(self.notes),
        }

    def reject_tables(self) -> tuple[str, str]:
        return f"_imp_{self.role}_rscan", f"_imp_{self.role}_rerr"

    def params(self) -> dict[str, object]:
        path = str(self.read_path or self.path)
        if self.kind == "parquet":
            return {"path": path}
        return {"path": path, "delim": self.delimiter, "quote": self.quote}


def _fail(src: str, message: str, hint: str | None = None) -> BadInputError:
    return BadInputError(f"{src}: {message}", hint=hint)


def _unreadable_parquet(label: str, exc: duckdb.Error) -> BadInputError:
    """A Parquet file DuckDB cannot read, with the first line of its reason."""
    return _fail(
        label,
        f"starts like Parquet but cannot be read ({str(exc).splitlines()[0][:200]})",
        hint="the file may be truncated; export it again",
    )


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n:,.0f} bytes"


# ------------------------------------------------------------------------------------ gzip


@dataclass
class _Gzip:
    """What one pass over a gzip file found."""

    uncompressed: int = 0
    members: int = 0
    end: int = 0  # compressed offset just past the last member
    padded: bool = False  # zero bytes after the last member
    head: bytes = b""
    crlf: int = 0
    bare_lf: int = 0


def _bomb(label: str, counted: int, done: int, size: int, members: int) -> BadInputError:
    many = f" in {members:,} gzip members" if members > 1000 else ""
    first = f"the first {done:,} of " if done < size else ""
    return _fail(
        label,
        f"inflates to more than {counted:,} bytes{many} from {first}{size:,} bytes compressed "
        f"(over {counted / max(done, 1):,.0f}x); refused as a likely decompression bomb",
        hint="decompress it yourself and check it, then import the plain CSV",
    )


def _zeros_to_end(rest: bytes, fh: io.BufferedReader) -> bool:
    """True when ``rest`` and everything left in ``fh`` are zero bytes (gzip padding)."""
    if rest.strip(b"\0"):
        return False
    while chunk := fh.read(_CHUNK):
        if chunk.strip(b"\0"):
            return False
    return True


def _check_gzip(path: Path, label: str, cfg: ReadConfig, head_limit: int) -> _Gzip:
    """Inflate the whole file in bounded steps: every member's CRC and length are checked,
    output is capped per call (``max_length``) and discarded except the first ``head_limit``
    bytes. Each member counts ``gzip_member_cost`` bytes on top of its output against the size
    and ratio limits, so neither a bomb nor a flood of empty members gets far.
    """
    size = path.stat().st_size
    info = _Gzip()
    head = bytearray()
    counted = 0
    last = 0  # the previous output's last byte: a CRLF split across outputs
    dec: zlib._Decompress | None = None
    with path.open("rb") as fh:
        buf, off, base = fh.read(_CHUNK), 0, 0  # base: file offset of buf[0]
        while True:
            if off >= len(buf):
                base, buf, off = base + len(buf), fh.read(_CHUNK), 0
                if not buf:
                    break
            if dec is None:  # a member starts at buf[off]
                if len(buf) - off < 2:  # its magic split across reads
                    buf, base, off = buf[off:] + fh.read(_CHUNK), base + off, 0
                if buf[off : off + 2] != _GZIP:
                    if info.members and _zeros_to_end(buf[off:], fh):
                        info.padded = True
                        break
                    what = "trailing garbage" if info.members else "no gzip header"
                    raise _fail(
                        label,
                        f"is a damaged gzip file ({what} at byte {base + off:,} after "
                        f"{info.members} complete member{'s' * (info.members != 1)})",
                        hint="download or export the file again; `gzip -t FILE` tests it",
                    )
                dec = zlib.decompressobj(wbits=47)  # 32 + 15: gzip header, full window
                info.members += 1
                counted += cfg.gzip_member_cost
            # small feeds: the bytes after a member's end are copied (unused_data), so a
            # feed of the whole read would cost a read's length per member
            feed = memoryview(buf)[off : off + _FEED]
            try:
                out = dec.decompress(feed, 4 * _CHUNK)
                while True:
                    if out:
                        counted += len(out)
                        info.uncompressed += len(out)
                        if len(head) < head_limit:
                            head += out[: head_limit - len(head)]
                        crlf = out.count(b"\r\n") + (last == 0x0D and out[0] == 0x0A)
                        info.crlf += crlf
                        info.bare_lf += out.count(b"\n") - crlf
                        last = out[-1]
                    # the ratio to the bytes read so far, not to the whole file: a bomb (or a
                    # flood of empty members) is stopped after its first 16 MiB, whatever its size
                    done = base + off + len(feed) - len(dec.unconsumed_tail) - len(dec.unused_data)
                    if counted > cfg.max_uncompressed_bytes or (
                        counted > cfg.gzip_ratio_floor and counted > cfg.max_gzip_ratio * done
                    ):
                        raise _bomb(label, counted, done, size, info.members)
                    if not dec.unconsumed_tail:
                        break
                    out = dec.decompress(dec.unconsumed_tail, 4 * _CHUNK)
            except zlib.error as exc:
                msg = str(exc)
                what = (
                    "bad CRC: the data is damaged"
                    if "incorrect data check" in msg
                    else "wrong length check: the data is damaged"
                    if "incorrect length check" in msg
                    else f"damaged gzip member {info.members} ({msg.split(': ')[-1]})"
                )
                raise _fail(
                    label,
                    f"is a damaged gzip file ({what})",
                    hint="download or export the file again; `gzip -t FILE` tests it",
                ) from None
            off += len(feed) - len(dec.unused_data)
            if dec.eof:
                info.end = base + off
                dec = None
    if dec is not None:
        raise _fail(
            label,
            f"is a truncated gzip file (member {info.members} ends early, after "
            f"{info.uncompressed:,} bytes of data)",
            hint="the download or copy was cut short: get the whole file again",
        )
    if not info.members:
        raise _fail(label, "is an empty gzip file")
    info.head = bytes(head)
    return info


def _trimmed_copy(path: Path, length: int) -> Path:
    """The first ``length`` bytes of ``path`` in a temporary file (streamed)."""
    fd, name = tempfile.mkstemp(prefix="ltrec-gz-", suffix=".csv.gz")
    with os.fdopen(fd, "wb") as out, path.open("rb") as src:
        left = length
        while left > 0:
            chunk = src.read(min(_CHUNK, left))
            if not chunk:
                break
            out.write(chunk)
            left -= len(chunk)
    return Path(name)


# ------------------------------------------------------------------------------------ text


def _read_head(fh: io.BufferedIOBase, limit: int) -> bytes:
    """The first record (however long, up to ``limit`` bytes) plus ``_SNIFF_BYTES`` more."""
    buf = bytearray(fh.read(_SNIFF_BYTES))
    while len(buf) < limit:
        end = _first_line_end(bytes(buf))
        if end is not None and len(buf) >= end + _SNIFF_BYTES:
            break
        more = fh.read(max(_CHUNK, len(buf)))  # doubling: linear in the header's length
        if not more:
            break
        buf += more
    return bytes(buf)


def _first_line_end(raw: bytes) -> int | None:
    """Offset just past the first line end outside double quotes, or None."""
    start = 0
    while True:
        nl = raw.find(b"\n", start)
        if nl < 0:
            return None
        if raw.count(b'"', 0, nl) % 2 == 0:
            return nl + 1
        start = nl + 1


def _utf16(raw: bytes) -> bool:
    return raw.startswith((b"\xff\xfe", b"\xfe\xff"))


def _utf8(raw: bytes) -> bool:
    """``raw``, a slice from inside a file, is valid UTF-8 (cut characters at the ends are ok)."""
    start = 0
    while start < min(3, len(raw)) and 0x80 <= raw[start] < 0xC0:
        start += 1  # continuation bytes of a character that began before the slice
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(raw[start:], final=False)
    except UnicodeDecodeError:
        return False
    return True


def _decode(raw: bytes, label: str, encoding: str | None) -> tuple[str, str, bool]:
    """Decode the first bytes: (text without BOM, encoding, whether it was detected).

    Strict UTF-8 first (a multi-byte character cut at the end is fine); bytes that are not
    UTF-8 make it Latin-1, unless UTF-8 was asked for.
    """
    if _utf16(raw):
        raise _fail(label, "is UTF-16 encoded", hint="save it as 'CSV UTF-8' and import again")
    if encoding == "latin-1":
        return raw.decode("latin-1"), "latin-1", False
    try:
        text = codecs.getincrementaldecoder("utf-8")("strict").decode(raw, final=False)
    except UnicodeDecodeError as exc:
        if encoding == "utf-8":
            line = raw[: exc.start].count(b"\n") + 1
            raise _fail(
                label,
                f"is not valid UTF-8 (byte 0x{raw[exc.start]:02x} on line {line})",
                hint="pass --encoding latin-1 if it is Latin-1, or save it as UTF-8 (in Excel: "
                "'CSV UTF-8')",
            ) from None
        return raw.decode("latin-1"), "latin-1", True
    return text.removeprefix("\ufeff"), "utf-8", encoding is None


def _complete(text: str, at_eof: bool) -> str:
    """``text`` without its last, possibly cut, line (kept when the file ends there)."""
    if at_eof or text.endswith(("\n", "\r")):
        return text
    cut = max(text.rfind("\n"), text.rfind("\r"))
    return text[: cut + 1] if cut >= 0 else text


def _records(text: str, delim: str, quote: str, n: int) -> list[list[str]]:
    """The first ``n`` records of ``text`` (complete lines only; see :func:`_complete`)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, quotechar=quote)
    out: list[list[str]] = []
    try:
        for row in reader:
            if row:
                out.append(row)
            if len(out) >= n:
                break
    except csv.Error:
        pass
    return out


def _sniff_delimiter(text: str, quote: str) -> str:
    """The delimiter that splits the first records into the same number (>= 2) of fields.

    Ties go to the one giving more fields, then to the order comma, semicolon, tab, pipe.
    """
    best: tuple[tuple[float, int, int], str] | None = None
    for order, delim in enumerate(_DELIMS):
        recs = _records(text, delim, quote, _SNIFF_RECORDS)
        if not recs:
            continue
        widths = [len(r) for r in recs]
        first = widths[0]
        if first < 2:
            continue
        agree = sum(w == first for w in widths) / len(widths)
        score = (agree, first, -order)
        if best is None or score > best[0]:
            best = (score, delim)
    return best[1] if best else ","


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def _sniff_quote(text: str, delim: str | None) -> str:
    """``'`` only when no ``"`` appears and the data lines are single-quoted the way a writer
    quotes: a wrapped value holds the delimiter (minimal quoting), or every text value of every
    data line is wrapped (quote-all / non-numeric). One wrapped value among plain ones is an id
    that happens to start and end with ``'`` (``'0'``), kept as written."""
    if '"' in text or "'" not in text:
        return '"'
    lines = [ln.rstrip("\r") for ln in text.split("\n")[: _SNIFF_RECORDS + 1] if ln.strip()]
    data = lines[1:] or lines  # the first line may be a header, which writers often leave bare
    for d in [delim] if delim else list(_DELIMS):
        e = re.escape(d)
        inner = re.findall(rf"(?:^|{e})'([^'\r\n]*)'(?={e}|$)", "\n".join(data), re.MULTILINE)
        if any(d in v for v in inner):
            return "'"
        texts = [[f for f in ln.split(d) if f and not _NUMBER.fullmatch(f)] for ln in data]
        if any(texts) and all(
            len(f) >= 2 and f[0] == f[-1] == "'" for fields in texts for f in fields
        ):
            return "'"
    return '"'


def _explain_delimiter(label: str, text: str, delim: str, quote: str) -> None:
    """A one-column header with a given delimiter: if another one splits it, say so."""
    for other, word in _DELIMS.items():
        if other == delim:
            continue
        recs = _records(text, other, quote, 3)
        widths = {len(r) for r in recs if r}
        if recs and len(recs[0]) >= 2 and len(widths) == 1:
            shown = "\\t" if other == "\t" else other
            expected = _DELIMS.get(delim, repr(delim))
            raise _fail(
                label,
                f"looks {word}-separated ('{shown}'), but the {expected} delimiter was expected "
                f"(the header reads as one column: {recs[0][:1][0][:60]!r}...)",
                hint=f"pass --delimiter '{shown}' (or --delimiter ROLE='{shown}' for one file), "
                "or leave --delimiter out to have it detected",
            )


def _looks_like_data(record: list[str]) -> bool:
    """A first line of numbers only is data, not a header."""
    return len(record) >= 2 and all(re.fullmatch(r"\s*[+-]?\d+(\.\d+)?\s*", v) for v in record)


def sniff(
    path: Path | str, role: str, cfg: ReadConfig | None = None, label: str | None = None
) -> SourceFile:
    """Check a file as a whole, sniff its dialect and read its header. Raises
    :class:`BadInputError`.

    Format is decided by content (``PAR1`` magic for Parquet, ``1f 8b`` for gzip), never by the
    extension; a file named ``.parquet`` that is not Parquet is refused.
    """
    cfg = cfg or ReadConfig()
    opts = cfg.for_file(role)
    path = Path(path)
    label = label or path.name
    if not path.exists():
        raise _fail(label, f"file not found ({path})")
    if not path.is_file():
        raise _fail(label, "is not a regular file")
    size = path.stat().st_size
    head_limit = cfg.max_header_bytes + _SNIFF_BYTES
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if not head.removeprefix(b"\xef\xbb\xbf").strip():
        raise _fail(label, "is empty", hint="export the data again; the file has no content")
    named_parquet = path.suffix.lower() in (".parquet", ".pq", ".parq")
    if head.startswith(_PARQUET):
        return _sniff_parquet(path, role, label, size, cfg)
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
    notes: list[str] = []
    kind, uncompressed, read_path, at_eof, tail = "csv", None, None, False, b""
    if head.startswith(_GZIP):
        gz = _check_gzip(path, label, cfg, head_limit)
        head, uncompressed, kind = gz.head, gz.uncompressed, "csv.gz"
        at_eof = len(head) == gz.uncompressed
        mixed = gz.crlf > 0 and gz.bare_lf > 0
        if gz.members > 1:
            notes.append(f"{gz.members:,} gzip members")
        if gz.padded:
            read_path = _trimmed_copy(path, gz.end)
            notes.append("zero padding after the last gzip member ignored")
        if not head.removeprefix(b"\xef\xbb\xbf").strip():
            raise _fail(label, "is empty once decompressed")
    else:
        with path.open("rb") as fh:
            head = _read_head(fh, head_limit)
            at_eof = len(head) == size
            if not at_eof:
                fh.seek(max(len(head), size - _SNIFF_BYTES))
                tail = fh.read()
        crlf = head.count(b"\r\n") + tail.count(b"\r\n")
        mixed = crlf > 0 and head.count(b"\n") + tail.count(b"\n") > crlf
    if _utf16(head):
        raise _fail(label, "is UTF-16 encoded", hint="save it as 'CSV UTF-8' and import again")
    if b"\x00" in head:
        raise _fail(label, "looks binary (it contains NUL bytes), not like a CSV text file")
    if _first_line_end(head) is None and len(head) >= head_limit:
        raise _fail(
            label,
            f"has a first line longer than {_mib(cfg.max_header_bytes)} (no line end found)",
            hint="check that it is a CSV file with one record per line",
        )
    text, encoding, detected = _decode(head, label, opts.encoding)
    if encoding == "utf-8" and opts.encoding is None and head.isascii() and not _utf8(tail):
        encoding = "latin-1"  # ASCII at the start, Latin-1 bytes at the end
    if encoding == "latin-1":
        notes.append("Latin-1 text" + (" (detected: not valid UTF-8)" if detected else ""))
    text = _complete(text, at_eof)
    quote = opts.quote or _sniff_quote(text, opts.delimiter)
    delimiter = opts.delimiter or _sniff_delimiter(text, quote)
    if opts.quote is None and quote != '"':
        notes.append(f"quote {quote} detected")
    if opts.delimiter is None and delimiter != ",":
        notes.append(f"{_DELIMS[delimiter]}-separated (detected)")
    if mixed:
        notes.append("mixed CRLF/LF line ends")
    records = _records(text, delimiter, quote, _SNIFF_RECORDS)
    if not records:
        raise _fail(label, "has no complete first line (header)")
    first = [c.strip() for c in records[0]]
    if len(first) > cfg.max_columns:
        raise _fail(
            label,
            f"has {len(first):,} columns; at most {cfg.max_columns:,} are read",
            hint="keep the columns ltrec needs (ids, event, time, attributes) and import again",
        )
    header = True
    columns = first
    if opts.columns is not None:
        header = False
        columns = list(opts.columns)
        if len(columns) != len(first):
            raise _fail(
                label,
                f"--columns names {len(columns)} columns, but the first line has "
                f"{len(first)} fields",
                hint="name every column of the file, in order",
            )
    else:
        shaped = guess_headerless(records)
        if shaped is not None:
            header, columns = False, list(shaped)
            notes.append(f"no header: columns {','.join(columns)} (recognised by their values)")
        elif opts.no_header:
            raise _fail(
                label,
                "has no header, and its columns could not be recognised from the data",
                hint=f"name its {len(first)} columns: --columns a,b,c (or --columns {role}=a,b,c)",
            )
        elif _looks_like_data(first):
            raise _fail(
                label,
                f"has no header: its first line is data ({','.join(first)[:60]})",
                hint=f"name its {len(first)} columns: --no-header --columns a,b,c",
            )
    if header and len(first) == 1:
        if opts.delimiter is not None:
            _explain_delimiter(label, text, delimiter, quote)
    if header and all(not c for c in first):
        raise _fail(label, "has an empty header line", hint="the first line must name the columns")
    src = SourceFile(
        role=role,
        path=path,
        label=label,
        kind=kind,
        columns=columns,
        delimiter=delimiter,
        quote=quote,
        size=size,
        uncompressed_size=uncompressed,
        notes=notes,
        encoding=encoding,
        header=header,
        strict=not mixed,
        read_path=read_path,
    )
    if read_path is not None:
        weakref.finalize(src, _unlink, read_path)
    return src


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


# --------------------------------------------------------------------------------- Parquet

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _parquet_footer(path: Path, label: str, size: int) -> None:
    """The footer's length (last 8 bytes) must fit the file."""
    if size < 12:
        raise _fail(label, "starts like Parquet but is too short to be one")
    with path.open("rb") as fh:
        fh.seek(size - 8)
        tail = fh.read(8)
    (footer,) = struct.unpack("<I", tail[:4])
    if tail[4:] != _PARQUET or footer + 12 > size:
        raise _fail(
            label,
            "starts like Parquet but cannot be read (its footer is missing or damaged)",
            hint="the file may be truncated; export it again",
        )


def _sniff_parquet(path: Path, role: str, label: str, size: int, cfg: ReadConfig) -> SourceFile:
    _parquet_footer(path, label, size)
    con = duckdb.connect()
    try:
        con.execute("SET threads = 1")
        try:
            described = con.execute(
                "DESCRIBE SELECT * FROM read_parquet($path)", {"path": str(path)}
            ).fetchall()
            sizes = con.execute(
                "SELECT (SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata($path)), "
                "(SELECT coalesce(sum(total_uncompressed_size), 0) FROM parquet_metadata($path))",
                {"path": str(path)},
            )
            rows, declared = one_row(sizes)
        except duckdb.Error as exc:
            raise _unreadable_parquet(label, exc) from None
        columns = [r[0] for r in described]
        if not columns:
            raise _fail(label, "has no columns")
        for i, name in enumerate(columns):
            if _CONTROL.search(name):
                shown = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", name)[:80]
                raise _fail(
                    label,
                    f"column {i + 1} has a control character in its name ('{shown}': a NUL "
                    "byte or similar)",
                    hint="rename the column when writing the file",
                )
        if len(columns) > cfg.max_columns:
            raise _fail(label, f"has {len(columns):,} columns; at most {cfg.max_columns:,}")
        _parquet_limits(label, size, int(rows), int(declared), "declares", cfg)
        text = [r[0] for r in described if r[1] in ("VARCHAR", "BLOB")]
        if text:
            _parquet_text(con, path, label, size, text, cfg)
    finally:
        con.close()
    return SourceFile(role=role, path=path, label=label, kind="parquet", columns=columns, size=size)


def _parquet_limits(
    label: str, size: int, rows: int, nbytes: int, verb: str, cfg: ReadConfig
) -> None:
    if rows > max(10**6, cfg.max_rows_per_byte * size):
        raise _fail(
            label,
            f"declares {rows:,} rows in {size:,} bytes (over {rows / max(size, 1):,.0f} rows "
            "per byte); refused as a likely decompression bomb",
            hint="check how the file was made; real event files take a few bytes per row",
        )
    if nbytes > cfg.max_uncompressed_bytes or (
        nbytes > cfg.gzip_ratio_floor and nbytes > cfg.max_gzip_ratio * size
    ):
        raise _fail(
            label,
            f"{verb} {_mib(nbytes)} of data in {_mib(size)} (over "
            f"{nbytes / max(size, 1):,.0f}x); refused as a likely decompression bomb",
            hint="check how the file was made, or import it as CSV",
        )


def _parquet_text(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    label: str,
    size: int,
    columns: list[str],
    cfg: ReadConfig,
) -> None:
    """Longest and total text per text column, measured without expanding a dictionary."""
    probes = ", ".join(
        f"max(strlen({quote_ident(c)})), sum(strlen({quote_ident(c)}))" for c in columns
    )
    try:
        row = one_row(con.execute(f"SELECT {probes} FROM read_parquet($path)", {"path": str(path)}))
    except duckdb.Error as exc:
        raise _unreadable_parquet(label, exc) from None
    total = 0
    for j, name in enumerate(columns):
        longest, nbytes = row[2 * j] or 0, row[2 * j + 1] or 0
        if longest > cfg.max_value_bytes:
            raise _fail(
                label,
                f"column {name[:60]!r} holds a value of {_mib(longest)}; values are limited "
                f"to {_mib(cfg.max_value_bytes)}",
                hint="ids, titles and categories are short text: check how the file was made",
            )
        total += int(nbytes)
    _parquet_limits(label, size, 0, total, "holds", cfg)


# ------------------------------------------------------------------------ command-line options

_DELIM_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def _per_file(flag: str, values: list[str] | None) -> tuple[str | None, dict[str, str]]:
    """``VALUE`` (every file) or ``ROLE=VALUE`` (one file) -> (every-file value, role -> value)."""
    every: str | None = None
    files: dict[str, str] = {}
    for value in values or []:
        role, eq, rest = value.partition("=")
        if eq and role in ("events", "items", "users"):
            if role in files:
                raise BadInputError(f"{flag} {role}=... is given twice")
            files[role] = rest
        elif eq and role and flag != "--delimiter":
            raise BadInputError(
                f"{flag} {value!r}: {role!r} is not a file",
                hint=f"use {flag} VALUE for every file, or {flag} events=VALUE (items, users)",
            )
        else:
            if every is not None:
                raise BadInputError(
                    f"{flag} is given twice for every file",
                    hint=f"use {flag} events=VALUE (items, users) for one file",
                )
            every = value
    return every, files


def _delimiter(value: str) -> str:
    delim = _DELIM_NAMES.get(value.lower(), value)
    if len(delim) != 1 or delim in "\r\n\"'":
        raise BadInputError(
            f"--delimiter must be one character (or 'tab'), got {value!r}",
            hint="e.g. --delimiter ';' for every file, or --delimiter events=';' for one",
        )
    return delim


def read_config(
    delimiter: list[str] | None = None,
    encoding: list[str] | None = None,
    columns: list[str] | None = None,
    no_header: bool = False,
) -> ReadConfig:
    """A :class:`ReadConfig` from the import command's flags.

    ``--delimiter`` and ``--encoding`` take ``VALUE`` for every file or ``ROLE=VALUE`` for one
    (``events``, ``items``, ``users``); ``--columns a,b,c`` names the events file's columns
    (``--columns items=a,b,c`` another file's), which says that file has no header.
    """
    every_d, files_d = _per_file("--delimiter", delimiter)
    every_e, files_e = _per_file("--encoding", encoding)
    files_c: dict[str, str] = {}
    for value in columns or []:
        role, eq, rest = value.partition("=")
        if not (eq and role in ("events", "items", "users")):
            role, rest = "events", value  # a bare list names the events file's columns
        if role in files_c:
            raise BadInputError(f"--columns for the {role} file is given twice")
        files_c[role] = rest
    files: dict[str, FileOptions] = {}
    for role in ("events", "items", "users"):
        opts: dict[str, object] = {}
        if role in files_d:
            opts["delimiter"] = _delimiter(files_d[role])
        if role in files_e:
            opts["encoding"] = normalize_encoding(files_e[role])
        if role in files_c:
            names = tuple(c.strip() for c in next(csv.reader([files_c[role]])))
            if not names or any(not c for c in names):
                raise BadInputError(
                    f"--columns {files_c[role]!r}: every column needs a name",
                    hint="e.g. --columns user_id,item_id,category_id,behavior_type,timestamp",
                )
            opts["columns"] = names
        if opts:
            files[role] = FileOptions(**opts)
    return ReadConfig(
        delimiter=_delimiter(every_d) if every_d is not None else None,
        encoding=normalize_encoding(every_e) if every_e is not None else None,
        no_header=no_header,
        files=files,
    )


__all__ = [
    "ENCODINGS",
    "FileOptions",
    "ReadConfig",
    "SourceFile",
    "normalize_encoding",
    "read_config",
    "sniff",
]
