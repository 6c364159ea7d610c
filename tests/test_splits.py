"""Temporal splits: global cutoff, per-user fraction, random log kept apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from noetik.data.dataset import load_kuairand
from noetik.data.splits import SplitConfig, make_splits, temporal_split, train_mask_expr
from noetik.errors import ConfigError


def _log() -> pl.DataFrame:
    """User 0: 10 rows, user 1: 3 rows, user 2: 1 row; interleaved times, some ties."""
    rng = np.random.default_rng(0)
    users = np.repeat([0, 1, 2], [10, 3, 1])
    times = rng.integers(0, 50, size=len(users)) * 1000
    frame = pl.DataFrame({"user_id": users.astype(np.int32), "time_ms": times.astype(np.int64)})
    return frame.sort(["user_id", "time_ms"]).with_row_index("row")


def test_global_split_orders_time() -> None:
    frame = _log()
    train, test = temporal_split(frame, SplitConfig(0.8, "global"))
    assert train.height + test.height == frame.height
    assert train["time_ms"].max() < test["time_ms"].min()  # type: ignore[operator]
    # the cutoff is the lower 0.8-quantile: at least 80 % of rows (ties included) train
    assert train.height >= int(0.8 * frame.height)
    assert set(train["row"]).isdisjoint(set(test["row"]))


def test_global_split_ties_go_to_train() -> None:
    frame = pl.DataFrame({"user_id": [0] * 5, "time_ms": [1, 2, 2, 2, 3]})
    train, test = temporal_split(frame, SplitConfig(0.5))
    assert train["time_ms"].to_list() == [1, 2, 2, 2]
    assert test["time_ms"].to_list() == [3]


def test_per_user_split_fraction() -> None:
    frame = _log()
    train, test = temporal_split(frame, SplitConfig(0.8, "user"))
    n_train = dict(train.group_by("user_id").len().iter_rows())
    assert n_train == {0: 8, 1: 2, 2: 1}  # round(0.8 * n): 8, 2.4 -> 2, 0.8 -> 1
    for user in (0, 1):
        last_train = train.filter(pl.col("user_id") == user)["time_ms"].max()
        first_test = test.filter(pl.col("user_id") == user)["time_ms"].min()
        assert last_train <= first_test  # type: ignore[operator]
    # order kept
    assert train["row"].is_sorted() and test["row"].is_sorted()


def test_lazy_in_lazy_out() -> None:
    train, test = temporal_split(_log().lazy(), SplitConfig(0.5, "user"))
    assert isinstance(train, pl.LazyFrame) and isinstance(test, pl.LazyFrame)
    assert train.collect().height + test.collect().height == 14


def test_mask_expression_alias() -> None:
    out = _log().select(train_mask_expr())
    assert out.columns == ["is_train"] and out.dtypes == [pl.Boolean]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"train_fraction": 1.0}, "train_fraction"), ({"by": "day"}, "split.by")],
)
def test_invalid_split_config(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        SplitConfig(**kwargs)  # type: ignore[arg-type]


def test_make_splits_tiny(tiny_pure: Path, cache_dir: Path) -> None:
    splits = make_splits(load_kuairand(tiny_pure, cache_dir))
    train, test = splits.train.collect(), splits.test.collect()
    assert train.height + test.height == 24  # two standard files of 12 rows each
    assert train["time_ms"].max() < test["time_ms"].min()  # type: ignore[operator]
    assert splits.random is not None
    assert splits.random.collect()["is_rand"].to_list() == [1] * 6
