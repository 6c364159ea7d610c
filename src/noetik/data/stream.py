"""Read a large KuaiRand CSV in bounded memory: typed, validated batches, and Parquet from them.

:func:`read_table` (:mod:`noetik.data.reader`) holds a whole file in memory, which is fastest
for the Pure and 1K files but impossible for KuaiRand-27K (46 GB of CSV). Here the file is read
one block of whole lines at a time, parsed by Polars with the published column types (no
inference, as ``read_table`` parses a whole file), and every batch passes the same checks with
the same one-line errors as ``read_table``: missing or extra columns, values that do not parse
(naming the line and column), missing values, negative ids and binary signals outside {0, 1}.
Line numbers count from the start of the whole file (line 1 is the header), whichever batch
the fault is in.

* :func:`iter_csv_batches` yields the validated batches in file order (frames of up to about
  ``block_bytes`` of CSV each, the schema's columns in schema order and dtypes);
* :func:`convert_csv` writes them as one LZ4 Parquet file through a temporary name and a rename:
  the same schema and rows as ``read_table(path, kind).write_parquet(...)``, with peak memory
  of a few blocks whatever the file's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from noetik.data.reader import (
    check_columns,
    check_values,
    first_bad_value,
    first_line,
    first_ragged_error,
    read_header,
)
from noetik.data.schema import SCHEMAS, FileKind
from noetik.errors import DataError
from noetik.utils.io import atomic_path
from noetik.utils.memory import available_bytes

#: CSV bytes parsed per batch (16 MB of log is about 230,000 rows, 15 MB typed): peak memory
#: is a few blocks, and larger blocks are no faster.
BLOCK_BYTES = 16 * 1024**2
#: Files larger than this are always converted by streaming (see :func:`stream_threshold`).
STREAM_ABOVE_BYTES = 8 * 1024**3


def stream_threshold() -> int:
    """Bytes above which a file is converted by streaming: a quarter of the memory available
    now, at most :data:`STREAM_ABOVE_BYTES`. Reading in memory is about twice as fast but
    needs up to about the file's size (2.5 GB for KuaiRand-1K's 4.2 GB statistic file), so
    every Pure and 1K file stays in memory on a 24 GB machine, and KuaiRand-27K's large parts
    stream. Both paths give the same table."""
    return min(STREAM_ABOVE_BYTES, available_bytes() // 4)


def _blocks(path: Path, block_bytes: int) -> Iterator[bytes]:
    """The data lines of ``path`` (after the header) in blocks of about ``block_bytes``, each
    ending at a line end: only one block is held at a time (Arrow's streaming CSV reader
    reads far ahead of its consumer). KuaiRand fields hold no line breaks, so a line end
    always ends a row."""
    with path.open("rb") as handle:
        handle.readline()
        rest = b""
        while chunk := handle.read(block_bytes):
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            if cut:
                yield data[:cut]
            rest = data[cut:]
        if rest.strip():
            yield rest


def _batches(
    path: Path, header: list[str], schema: dict[str, pl.DataType] | None, block_bytes: int
) -> Iterator[pl.DataFrame]:
    """The blocks of ``path`` parsed as ``read_table`` parses a whole file (Polars, the columns
    of ``header`` with ``schema``'s dtypes; all as text when ``schema`` is None), schema
    columns in schema order."""
    for block in _blocks(path, block_bytes):
        if schema is None:
            frame = pl.read_csv(block, has_header=False, new_columns=header, infer_schema=False)
        else:
            types = {c: schema[c] for c in header}
            frame = pl.read_csv(block, has_header=False, new_columns=header, schema=types)
        yield frame


def iter_csv_batches(
    path: Path, kind: FileKind, block_bytes: int = BLOCK_BYTES
) -> Iterator[pl.DataFrame]:
    """The data rows of the ``kind`` CSV at ``path`` as validated typed frames, in file order.

    Each frame holds the rows of about ``block_bytes`` of CSV (rows x the schema's columns, in
    schema order and dtypes). Raises :class:`DataError` as :func:`read_table` does, with line
    numbers counted in the whole file; a fault in a later batch is raised when that batch is
    reached (the earlier batches have been yielded by then).
    """
    path = Path(path)
    header = read_header(path)
    check_columns(path, header, kind)
    schema = SCHEMAS[kind]
    offset = 0
    batches = _batches(path, header, schema, block_bytes)
    while True:
        try:
            frame = next(batches)
        except StopIteration:
            break
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise _diagnose(path, header, kind, exc, block_bytes) from None
        if frame.height == 0:
            continue
        frame = frame.select(list(schema))
        check_values(path, frame, kind, offset)
        yield frame
        offset += frame.height
    if offset == 0:
        raise DataError(path, "file has a header but no data rows")


def convert_csv(path: Path, kind: FileKind, out: Path, block_bytes: int = BLOCK_BYTES) -> int:
    """Validate the ``kind`` CSV at ``path`` batch by batch into the Parquet file ``out``.

    ``out`` appears only when the whole file is valid and written (temporary file + rename);
    it holds the schema's columns in schema order, LZ4-compressed with statistics, one row
    group per batch. Returns the number of data rows. Raises :class:`DataError` as
    :func:`read_table` does, and when ``out`` cannot be written.
    """
    rows = 0
    try:
        with atomic_path(out) as tmp:
            writer: pq.ParquetWriter | None = None
            try:
                for frame in iter_csv_batches(path, kind, block_bytes):
                    table = frame.to_arrow()
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema, compression="lz4")
                    writer.write_table(table)
                    rows += frame.height
            finally:
                if writer is not None:
                    writer.close()
    except OSError as exc:
        raise DataError(out.parent, f"cannot write cache ({exc.strerror or exc})") from None
    return rows


def _diagnose(
    path: Path, header: list[str], kind: FileKind, exc: Exception, block_bytes: int
) -> DataError:
    """The first ragged row or unparseable value of ``path`` (slow: only after a failure).

    Rows are checked for their field count first (a short row also fails to parse), then the
    file is streamed again with every column as text and each value cast to its type.
    """
    ragged = first_ragged_error(path, header, short_is_missing=True)
    if ragged is not None:
        return ragged
    offset = 0
    try:
        for raw in _batches(path, header, None, block_bytes):
            found = first_bad_value(path, raw, kind, offset)
            if found is not None:
                return found
            offset += raw.height
    except (pl.exceptions.PolarsError, OSError) as inner:
        return DataError(path, f"cannot parse CSV ({first_line(inner)})")
    return DataError(path, f"cannot parse CSV ({first_line(exc)})")
