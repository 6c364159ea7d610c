"""Measure the real KuaiRand-Pure sample and the synthetic generator side by side.

Used to choose the defaults of ``noetik.data.synthetic.ModelParams``::

    .venv/bin/python scripts/calibrate_synth.py --users 2000 --videos 7583 --seed 0
    .venv/bin/python scripts/calibrate_synth.py --set policy_affinity=4 --set base_logit=-1.1

Prints one row per statistic (standard and random log), synthetic next to real.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from noetik.data.schema import LOG_SCHEMA, FileKind, Release, expected_files
from noetik.data.synthetic import SynthConfig, synthesize

DEFAULT_REAL = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "kuairand-pure-sample"
)
SIGNALS = (
    "is_click",
    "long_view",
    "is_like",
    "is_follow",
    "is_comment",
    "is_forward",
    "is_hate",
    "is_profile_enter",
)


def _share(values: np.ndarray, size: int) -> np.ndarray:
    counts = np.bincount(values, minlength=size)[:size].astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def _gini(counts: np.ndarray) -> float:
    x = np.sort(counts.astype(np.float64))
    n = x.size
    return float((2 * np.arange(1, n + 1) - n - 1).dot(x) / (n * x.sum()))


def measure(frame: pl.DataFrame, ref: pl.DataFrame | None = None) -> dict[str, float]:
    """Rates and distribution summaries of one log (``ref``: real log for the TVD rows)."""
    play, dur = pl.col("play_time_ms"), pl.col("duration_ms")
    out = {s: float(frame[s].mean()) for s in SIGNALS}  # type: ignore[arg-type]
    extra = frame.select(
        (dur == 0).mean().alias("duration_ms == 0"),
        (play > dur).mean().alias("play > duration"),
        (play == 0).mean().alias("play == 0"),
        (pl.col("comment_stay_time") > 0).mean().alias("comment_stay > 0"),
        dur.quantile(0.25).alias("duration q25 (ms)"),
        dur.median().alias("duration median (ms)"),
        dur.quantile(0.75).alias("duration q75 (ms)"),
        play.median().alias("play median (ms)"),
    ).row(0, named=True)
    out.update({k: float(v) for k, v in extra.items()})
    out["video Gini"] = _gini(frame.group_by("video_id").len()["len"].to_numpy())
    tab1 = frame.filter(pl.col("tab") == 1)
    out["click | tab 1"] = float(tab1["is_click"].mean() or 0.0)  # type: ignore[arg-type]
    tab0 = frame.filter(pl.col("tab") == 0)
    out["click | tab 0"] = float(tab0["is_click"].mean() or 0.0)  # type: ignore[arg-type]
    if ref is not None:
        for col, size in (("tab", 15), ("hourmin", 2400)):
            a = _share(frame[col].to_numpy(), size)
            b = _share(ref[col].to_numpy(), size)
            out[f"{col} TVD vs real"] = 0.5 * float(np.abs(a - b).sum())
    return out


def _logs(directory: Path, kind: FileKind, release: Release) -> pl.DataFrame:
    files = [directory / s.name for s in expected_files(release) if s.kind is kind]
    return pl.concat([pl.read_csv(f, schema=LOG_SCHEMA) for f in files if f.is_file()])


def _parse_overrides(items: list[str]) -> dict[str, float]:
    pairs = (item.split("=", 1) for item in items)
    return {key: float(value) for key, value in pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--videos", type=int, default=7_583)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real", type=Path, default=DEFAULT_REAL)
    parser.add_argument("--set", action="append", default=[], help="ModelParams field=value")
    args = parser.parse_args()
    config = SynthConfig.for_release("pure", users=args.users, videos=args.videos, seed=args.seed)
    params = dataclasses.replace(config.params, **_parse_overrides(args.set))
    config = dataclasses.replace(config, params=params)
    with tempfile.TemporaryDirectory() as tmp:
        synthesize(Path(tmp), config)
        synth = {k: _logs(Path(tmp), k, Release.PURE) for k in FileKind if "log" in k.value}
    have_real = (args.real / "log_standard_4_22_to_5_08_pure.csv").is_file()
    real = {k: _logs(args.real, k, Release.PURE) for k in synth} if have_real else {}
    print("| log | statistic | synthetic | real |\n|---|---|---:|---:|")
    for kind, frame in synth.items():
        ref = real.get(kind)
        ours = measure(frame, ref)
        theirs = measure(ref, ref) if ref is not None else {}
        name = "standard" if kind is FileKind.LOG_STANDARD else "random"
        for key, value in ours.items():
            other = f"{theirs[key]:.4g}" if key in theirs else "-"
            print(f"| {name} | {key} | {value:.4g} | {other} |")


if __name__ == "__main__":
    main()
