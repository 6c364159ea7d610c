"""Item content of a catalogue: basic features and engagement statistics, per action."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from noetik.data.dataset import load_kuairand
from noetik.data.item_content import BASIC_NUMERIC, CODE_FIELDS, NUMERIC_FIELDS, ItemContent
from noetik.data.item_stats import STAT_FEATURES
from tests.tiny import tiny_statistics


def test_statistics_become_standardised_numbers_in_the_order_of_their_rates(
    tiny_pure: Path, cache_dir: Path
) -> None:
    stats = tiny_statistics()
    show = [10.0, 20.0, 40.0, 80.0, 160.0]
    likes = [5.0, 1.0, 4.0, 2.0, 0.0]  # per show: 0.5, 0.05, 0.1, 0.025, 0
    stats = stats.head(5).with_columns(
        pl.Series("show_cnt", show), pl.Series("like_cnt", likes)
    )  # video 5 has no statistic row
    stats.write_csv(tiny_pure / "video_features_statistic_pure.csv")
    ds = load_kuairand(tiny_pure, cache_dir=cache_dir)
    ids = np.arange(6, dtype=np.int64)
    content = ItemContent.from_dataset(ds, ids)
    assert content.numeric.shape == (6, len(NUMERIC_FIELDS)) and content.numeric.dtype == np.float32
    assert content.codes.shape == (6, len(CODE_FIELDS))
    col = {name: content.numeric[:, i] for i, name in enumerate(NUMERIC_FIELDS)}
    # standardised over the catalogue; the like rate keeps its order, the missing video is 0
    like = col["log1p_permille.like_cnt"]
    assert abs(float(like.mean())) < 1e-5 and abs(float(like.std()) - 1.0) < 1e-4
    assert list(np.argsort(-like[:5])) == [0, 2, 1, 3, 4]
    assert np.argmax(col["stat_missing"]) == 5 and np.argmax(col["log1p_show_cnt"]) == 4
    assert np.isfinite(content.numeric).all()
    assert (*BASIC_NUMERIC, *STAT_FEATURES) == NUMERIC_FIELDS


def test_standardise_columns_by_hand() -> None:
    from noetik.utils.arrays import standardise_columns

    x = np.array([[1.0, 5.0, np.nan], [3.0, 5.0, 2.0], [5.0, 5.0, np.inf], [3.0, 5.0, 4.0]])
    out = standardise_columns(x)
    assert out.dtype == np.float32 and out is not x  # a float32 copy of float64 input
    std = np.sqrt(2.0)  # of 1, 3, 5, 3
    np.testing.assert_allclose(out[:, 0], [-2 / std, 0, 2 / std, 0], rtol=1e-6)
    assert (out[:, 1] == 0).all()  # constant: only centred
    np.testing.assert_allclose(out[:, 2], [0, -1, 0, 1], rtol=1e-6)  # non-finite -> the mean
    y = x.astype(np.float32)
    assert standardise_columns(y) is y  # float32: in place
    np.testing.assert_array_equal(y, out)
