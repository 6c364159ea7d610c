"""Read a trial-by-trial choice file through its :class:`ChoiceMapping` into episodes.

The file is read with Polars, every mapped column as text first, so that each problem is
reported as one line naming the file, the line (1 is the header) and the column:

* a mapped column missing from the header (the message lists the file's columns);
* a missing or non-numeric value, a choice that is not an integer in the declared range;
* a gain below 0, a loss of the wrong sign, a trial number repeated within a subject;
* a subject with fewer than ``min_trials`` trials.

Rows are grouped by subject (first-appearance order) and, within a subject, put in trial
order (the ``trial`` column, where numbers may skip; else the file's order).

>>> from noetik.data.choices import read_choices
>>> episodes = read_choices("../shared/data/decision-tasks/ts_exampleData.txt", "two-step")
>>> episodes.n_subjects, episodes.choices.shape
(11, (11, 200, 2))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from noetik.data.choices.episodes import ChoiceEpisodes, FloatArray, IntArray
from noetik.data.choices.mapping import ChoiceMapping
from noetik.data.choices.presets import preset
from noetik.data.reader import read_header
from noetik.errors import DataError

__all__ = ["read_choices"]


def read_choices(path: Path | str, mapping: ChoiceMapping | str) -> ChoiceEpisodes:
    """The episodes in choice file ``path`` as ``mapping`` (or the preset of that name) reads
    it; raises :class:`~noetik.errors.DataError` with one line for any problem of the file."""
    mapping = preset(mapping) if isinstance(mapping, str) else mapping
    path = Path(path)
    table = _Table.read(path, mapping)
    subject = table.subjects()
    choices = np.stack(
        [
            table.integers(column, low=mapping.choice_base, high=mapping.choice_base + n - 1)
            - mapping.choice_base
            for column, n in zip(mapping.choices, mapping.n_options, strict=True)
        ],
        axis=1,
    )
    outcomes = _outcomes(table, mapping)
    trial = None if mapping.trial is None else table.integers(mapping.trial)
    order, position, counts, names = _order(table, mapping, subject, trial)
    too_few = np.flatnonzero(counts < mapping.min_trials)
    if len(too_few):
        s = int(too_few[0])
        raise DataError(
            path,
            f"subject '{names[s]}' has {counts[s]} trial(s), fewer than min_trials="
            f"{mapping.min_trials}",
            column=mapping.subject,
        )
    rows, cols = subject[order], position
    shape = (len(names), int(counts.max()))

    def pad(values: np.ndarray, fill: float) -> np.ndarray:
        out = np.full(shape + values.shape[1:], fill, dtype=values.dtype)
        out[rows, cols] = values[order]
        return out

    mask = pad(np.ones(table.height, dtype=bool), False)
    numbers = position + 1 if trial is None else trial[order]
    extras: dict[str, object] = {}
    if mapping.reaction_time is not None:
        extras["reaction_time"] = pad(table.numbers(mapping.reaction_time), np.nan)
    if mapping.block is not None:
        extras["block"] = pad(table.integers(mapping.block), 0)
    if mapping.option_values:
        values = np.stack([table.numbers(c) for c in mapping.option_values], axis=1)
        extras["option_values"] = pad(values, np.nan)
        extras["option_value_names"] = mapping.option_values
    trials = np.zeros(shape, dtype=np.int64)
    trials[rows, cols] = numbers
    return ChoiceEpisodes(
        design=mapping.design(),
        subjects=names,
        choices=pad(choices, 0),
        outcomes=pad(outcomes, 0.0),
        mask=mask,
        trial=trials,
        source=str(path),
        **extras,  # type: ignore[arg-type]
    )


def _outcomes(table: _Table, mapping: ChoiceMapping) -> FloatArray:
    """(N, O) float64 outcome columns (losses as numbers <= 0)."""
    if mapping.reward is not None:
        return table.numbers(mapping.reward)[:, None]
    assert mapping.gain is not None and mapping.loss is not None
    gain = table.numbers(mapping.gain, low=0.0, what="a gain must be >= 0")
    if mapping.losses_are_negative:
        loss = table.numbers(mapping.loss, high=0.0, what="a loss must be <= 0")
    else:
        loss = -table.numbers(mapping.loss, low=0.0, what="a loss magnitude must be >= 0")
    return np.stack([gain, loss], axis=1)


def _order(
    table: _Table, mapping: ChoiceMapping, subject: IntArray, trial: IntArray | None
) -> tuple[IntArray, IntArray, IntArray, tuple[str, ...]]:
    """``(order, position, counts, names)``: the rows sorted by subject then trial, each sorted
    row's 0-based position in its subject's episode, trials per subject, subject ids."""
    row = np.arange(table.height)
    key = row if trial is None else trial
    order = np.lexsort((row, key, subject)).astype(np.int64)
    counts = np.bincount(subject).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = (np.arange(table.height) - starts[subject[order]]).astype(np.int64)
    if trial is not None:
        same = (subject[order][1:] == subject[order][:-1]) & (key[order][1:] == key[order][:-1])
        if same.any():
            i = int(np.flatnonzero(same)[0])
            first, again = sorted((int(order[i]), int(order[i + 1])))
            raise DataError(
                table.path,
                f"trial {key[again]} of subject '{table.names[subject[again]]}' appears twice "
                f"(lines {first + 2} and {again + 2})",
                column=mapping.trial,
                line=again + 2,
            )
    return order, position, counts, table.names


class _Table:
    """The mapped columns of one file as text, with checked conversions to numbers."""

    def __init__(self, path: Path, frame: pl.DataFrame, mapping: ChoiceMapping) -> None:
        self.path = path
        self.frame = frame
        self.mapping = mapping
        self.height = frame.height
        self.names: tuple[str, ...] = ()

    @classmethod
    def read(cls, path: Path, mapping: ChoiceMapping) -> _Table:
        header = read_header(path, mapping.separator)
        for field, column in mapping.columns().items():
            if column not in header:
                raise DataError(
                    path,
                    f"no column '{column}' (the mapping's {field}); the file has: "
                    + ", ".join(header),
                    column=column,
                )
        columns = sorted(set(mapping.columns().values()))
        try:
            frame = pl.read_csv(
                path, separator=mapping.separator, infer_schema=False, columns=columns
            )
        except (pl.exceptions.PolarsError, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(path, f"cannot parse the file ({first})") from None
        if frame.height == 0:
            raise DataError(path, "the file has a header but no data rows")
        table = cls(path, frame, mapping)
        for column in columns:
            table._text(column)  # missing values first, in column order
        return table

    def _text(self, column: str) -> pl.Series:
        values = self.frame[column].str.strip_chars()
        missing = values.is_null() | (values == "")
        if missing.any():
            self._fail(column, missing, "missing value")
        return values

    def _fail(self, column: str, bad: pl.Series, problem: str) -> None:
        row = int(bad.arg_true()[0])
        value = self.frame[column][row]
        shown = "" if value is None or not value.strip() else f" (got {value.strip()!r})"
        raise DataError(self.path, f"{problem}{shown}", column=column, line=row + 2)

    def subjects(self) -> IntArray:
        """(N,) int64 code of each row's subject (codes in first-appearance order)."""
        values = self._text(self.mapping.subject)
        names = values.unique(maintain_order=True)
        self.names = tuple(str(v) for v in names.to_list())
        codes = {name: i for i, name in enumerate(self.names)}
        return np.array([codes[v] for v in values.to_list()], dtype=np.int64)

    def numbers(
        self,
        column: str,
        *,
        low: float | None = None,
        high: float | None = None,
        what: str = "",
    ) -> FloatArray:
        """(N,) float64 values of ``column``; every value finite and within [low, high]."""
        text = self._text(column)
        values = text.cast(pl.Float64, strict=False)
        self._check(
            column, values.is_null() | values.is_nan() | values.is_infinite(), "not a number"
        )
        out: FloatArray = values.to_numpy().astype(np.float64)
        lo = -np.inf if low is None else low
        hi = np.inf if high is None else high
        self._check(column, pl.Series((out < lo) | (out > hi)), what or f"outside [{lo}, {hi}]")
        return out

    def integers(self, column: str, *, low: int | None = None, high: int | None = None) -> IntArray:
        """(N,) int64 values of ``column``; every value an integer within [low, high]."""
        values = self.numbers(column)
        self._check(column, pl.Series(values != np.round(values)), "not an integer")
        out = values.astype(np.int64)
        if low is not None and high is not None:
            self._check(
                column, pl.Series((out < low) | (out > high)), f"choice outside {low}..{high}"
            )
        return out

    def _check(self, column: str, bad: pl.Series, problem: str) -> None:
        if bad.any():
            self._fail(column, bad, problem)
