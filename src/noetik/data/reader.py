"""Read one KuaiRand CSV file into a typed, validated Polars frame.

The fast path parses the file once with the published dtypes (multi-threaded, no inference).
Only when that fails does a slower diagnostic pass run, to name the exact line and column at
fault. Every problem raises :class:`~noetik.errors.DataError` with a one-line message.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import polars as pl

from noetik.data.schema import (
    BINARY_SIGNALS,
    ID_COLUMNS,
    LOG_SCHEMA,
    NULLABLE,
    SCHEMAS,
    FileKind,
)
from noetik.errors import DataError

_BINARY_COLUMNS = (*BINARY_SIGNALS, "is_rand")
#: The problem reported for an empty required field.
MISSING_VALUE = "missing value (empty field, or a truncated/short row)"


def read_header(path: Path, separator: str = ",") -> list[str]:
    """The column names on the first line of ``path``, split at ``separator`` (raises DataError
    if unreadable/empty)."""
    try:
        if path.is_dir():
            raise DataError(path, "is a directory, expected a CSV file")
        with path.open("rb") as handle:
            first = handle.readline()
    except OSError as exc:
        raise DataError(path, f"cannot read file ({exc.strerror or exc})") from None
    if not first.strip():
        raise DataError(path, "file is empty (no header line)")
    text = first.decode("utf-8", errors="replace").strip().lstrip("\ufeff")
    return [name.strip().strip('"') for name in text.split(separator)]


def check_columns(path: Path, header: list[str], kind: FileKind) -> None:
    """Raise DataError naming missing, extra or duplicated columns of a ``kind`` file."""
    expected = list(SCHEMAS[kind])
    missing = [c for c in expected if c not in header]
    extra = [c for c in header if c not in expected]
    if missing:
        raise DataError(path, f"missing column(s) {_quote(missing)} for a {kind.value} file")
    if extra:
        raise DataError(path, f"unexpected column(s) {_quote(extra)} for a {kind.value} file")
    if len(header) != len(set(header)):
        dup = sorted({c for c in header if header.count(c) > 1})
        raise DataError(path, f"duplicated column(s) {_quote(dup)}")


def _quote(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def read_table(path: Path, kind: FileKind) -> pl.DataFrame:
    """Read and validate a ``kind`` CSV at ``path``; columns come back in schema order and dtypes.

    Raises DataError for an unreadable or empty file, missing/extra columns, values that do not
    parse as the published type, missing values in required columns (ragged or truncated rows),
    negative ids (``user_id``, ``video_id``, ``author_id``, ``music_id``) and binary signals
    outside {0, 1}.
    """
    header = read_header(path)
    check_columns(path, header, kind)
    schema = SCHEMAS[kind]
    try:
        frame = pl.read_csv(path, schema={c: schema[c] for c in header}, has_header=True)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise _diagnose(path, header, kind, exc) from None
    if frame.height == 0:
        raise DataError(path, "file has a header but no data rows")
    frame = frame.select(list(schema))
    check_values(path, frame, kind)
    return frame


def check_values(path: Path, frame: pl.DataFrame, kind: FileKind, offset: int = 0) -> None:
    """Raise DataError for the first missing value, negative id or non-binary signal of
    ``frame`` (rows x schema columns of ``kind``, in schema order), which holds the data rows
    after the first ``offset`` data rows of ``path``: errors name line ``offset + row + 2``."""
    _check_nulls(path, frame, kind, offset)
    _check_ids(path, frame, offset)
    if SCHEMAS[kind] is LOG_SCHEMA:
        _check_binary(path, frame, offset)


def _check_nulls(path: Path, frame: pl.DataFrame, kind: FileKind, offset: int) -> None:
    required = [c for c in frame.columns if c not in NULLABLE[kind]]
    counts = frame.select(pl.col(required).null_count()).row(0)
    for column, count in zip(required, counts, strict=True):
        if count:
            row = _first_row(frame, pl.col(column).is_null())
            raise DataError(
                path,
                MISSING_VALUE,
                column=column,
                line=offset + row + 2,
            )


def _check_ids(path: Path, frame: pl.DataFrame, offset: int) -> None:
    ids = [c for c in frame.columns if c in ID_COLUMNS]
    bad = frame.select([(pl.col(c) < 0).any().alias(c) for c in ids]).row(0)
    for column, is_bad in zip(ids, bad, strict=True):
        if is_bad:
            row = _first_row(frame, pl.col(column) < 0)
            value = frame[column][row]
            raise DataError(
                path,
                f"value {value} is negative (ids are 0 or more)",
                column=column,
                line=offset + row + 2,
            )


def _check_binary(path: Path, frame: pl.DataFrame, offset: int) -> None:
    bad = frame.select([(~pl.col(c).is_in([0, 1])).any().alias(c) for c in _BINARY_COLUMNS]).row(0)
    for column, is_bad in zip(_BINARY_COLUMNS, bad, strict=True):
        if is_bad:
            row = _first_row(frame, ~pl.col(column).is_in([0, 1]))
            value = frame[column][row]
            raise DataError(
                path, f"value {value} is not 0 or 1", column=column, line=offset + row + 2
            )


def _first_row(frame: pl.DataFrame, predicate: pl.Expr) -> int:
    """0-based index of the first row of ``frame`` where ``predicate`` holds."""
    hits = frame.select(pl.arg_where(predicate).first()).item()
    return int(hits)


def _diagnose(path: Path, header: list[str], kind: FileKind, exc: Exception) -> DataError:
    """Find the first line/column that breaks the schema (slow path, only after a failure)."""
    ragged = first_ragged_error(path, header)
    if ragged is not None:
        return ragged
    try:
        raw = pl.read_csv(path, infer_schema=False, has_header=True)
    except (pl.exceptions.PolarsError, OSError) as inner:
        return DataError(path, f"cannot parse CSV ({first_line(inner)})")
    return first_bad_value(path, raw, kind) or DataError(
        path, f"cannot parse CSV ({first_line(exc)})"
    )


def first_ragged_error(
    path: Path, header: list[str], short_is_missing: bool = False
) -> DataError | None:
    """The error naming the first row of ``path`` whose field count differs from ``header``'s,
    or None (reads the file line by line: slow, for diagnosis only). With
    ``short_is_missing`` a short row is reported as the missing value of its first absent
    column, as the in-memory reader (which pads short rows with nulls) reports it."""
    ragged = _first_ragged_line(path, len(header))
    if ragged is None:
        return None
    line, n_fields = ragged
    if short_is_missing and n_fields < len(header):
        return DataError(path, MISSING_VALUE, column=header[n_fields], line=line)
    return DataError(path, f"row has {n_fields} fields, the header has {len(header)}", line=line)


def first_bad_value(
    path: Path, raw: pl.DataFrame, kind: FileKind, offset: int = 0
) -> DataError | None:
    """The error naming the first value of ``raw`` (rows x columns of ``kind``, all strings as
    read from the file, after its first ``offset`` data rows) that does not parse as its
    published type, or None when every value parses."""
    schema = SCHEMAS[kind]
    for column in raw.columns:
        cast = pl.col(column).cast(schema[column], strict=False)
        bad = cast.is_null() & pl.col(column).is_not_null()
        if raw.select(bad.any()).item():
            row = _first_row(raw, bad)
            value = raw[column][row]
            dtype = _dtype_name(schema[column])
            return DataError(
                path,
                f"value '{value}' is not a valid {dtype}",
                column=column,
                line=offset + row + 2,
            )
    return None


def _first_ragged_line(path: Path, n_columns: int) -> tuple[int, int] | None:
    """(line number, field count) of the first row whose field count differs from the header."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for row in reader:
            if row and len(row) != n_columns:
                return reader.line_num, len(row)
    return None


def _dtype_name(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "integer"
    if dtype.is_float():
        return "number"
    return str(dtype)


def first_line(exc: Exception) -> str:
    """The first line of the message of ``exc`` (its type name when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def file_fingerprint(path: Path) -> dict[str, int]:
    """Size and modification time of ``path``: enough to notice that a source file changed."""
    stat = os.stat(path)
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
