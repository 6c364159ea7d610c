"""Write a synthetic dataset: every official file of the release plus ``noetik_synth.json``.

Logs are generated for blocks of users and appended to temporary CSV files that are renamed
onto their final names only once complete (``atomic_path``), so memory stays bounded (one block
of users at a time) and no half-written file ever carries an official name.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import polars as pl
from rich.progress import Progress

from noetik.data.schema import STANDARD_PERIODS, FileKind, FileSpec, expected_files
from noetik.data.synthetic.config import SynthConfig
from noetik.data.synthetic.features import user_features, video_basic, video_statistic
from noetik.data.synthetic.logs import Coverage, GroupedPolicy, Period, log_chunk
from noetik.data.synthetic.world import SyntheticWorld
from noetik.utils.io import atomic_path, write_json
from noetik.utils.seeding import rng

#: Name of the file holding the generating config (``SyntheticWorld`` is rebuilt from it).
CONFIG_FILE = "noetik_synth.json"
#: Upper bound on (users in a block) x (videos, or topic groups) cells of the policy matrix.
_MAX_POLICY_CELLS = 6_000_000


def user_blocks(config: SynthConfig, parts: int = 1) -> list[tuple[int, int]]:
    """[start, stop) user-id blocks of about ``chunk_rows`` log rows each.

    Blocks never straddle the user boundaries of ``parts`` equal part files. The dense policy
    also caps (users in a block) x n_videos; the grouped one only (users) x n_topics ** 2.
    """
    per_user = config.standard_per_user + config.random_per_user
    width = config.n_topics**2 if config.grouped_policy else config.n_videos
    size = max(1, min(int(config.chunk_rows / per_user), _MAX_POLICY_CELLS // width))
    cuts = set(range(0, config.n_users, size))
    cuts |= {config.n_users * k // parts for k in range(parts)}
    edges = [*sorted(cuts), config.n_users]
    return [(lo, hi) for lo, hi in itertools.pairwise(edges) if hi > lo]


def load_config(out_dir: Path) -> SynthConfig:
    """The config stored in ``out_dir/noetik_synth.json`` by ``synthesize``."""
    return SynthConfig.from_dict(json.loads((Path(out_dir) / CONFIG_FILE).read_text()))


def synthesize(out_dir: Path, config: SynthConfig, progress: Progress | None = None) -> list[Path]:
    """Write all files of ``expected_files(config.release)`` into ``out_dir``; return their paths.

    Same config, byte-identical files. The 27K release splits the standard logs (by user) and
    the statistic features (by video) into their official part files.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    world = SyntheticWorld.from_config(config)
    specs = expected_files(config.release)
    paths = _write_logs(out_dir, world, specs, progress)
    tables = {
        FileKind.USER_FEATURES: user_features(world),
        FileKind.VIDEO_BASIC: video_basic(world),
        FileKind.VIDEO_STATISTIC: video_statistic(world),
    }
    for kind, table in tables.items():
        parts = [s for s in specs if s.kind is kind]
        for spec, piece in zip(parts, _split_rows(table, len(parts)), strict=True):
            with atomic_path(out_dir / spec.name) as tmp:
                piece.write_csv(tmp)
            paths[spec.name] = out_dir / spec.name
    write_json(out_dir / CONFIG_FILE, config.to_dict())
    return [paths[s.name] for s in specs]


def _split_rows(frame: pl.DataFrame, parts: int) -> list[pl.DataFrame]:
    bounds = np.linspace(0, frame.height, parts + 1).astype(int)
    return [frame.slice(int(a), int(b - a)) for a, b in itertools.pairwise(bounds)]


def _log_targets(specs: list[FileSpec]) -> dict[str, list[FileSpec]]:
    """Log specs keyed by 'std:<period>' / 'random', each list ordered by part."""
    out: dict[str, list[FileSpec]] = {}
    for spec in specs:
        if spec.kind is FileKind.LOG_STANDARD:
            out.setdefault(f"std:{spec.period}", []).append(spec)
        elif spec.kind is FileKind.LOG_RANDOM:
            out.setdefault("random", []).append(spec)
    return out


@contextlib.contextmanager
def _open_all(out_dir: Path, specs: list[FileSpec]) -> Iterator[dict[str, IO[bytes]]]:
    with contextlib.ExitStack() as stack:
        handles: dict[str, IO[bytes]] = {}
        for spec in specs:
            tmp = stack.enter_context(atomic_path(out_dir / spec.name))
            handles[spec.name] = stack.enter_context(tmp.open("wb"))
        yield handles


def _write_logs(
    out_dir: Path, world: SyntheticWorld, specs: list[FileSpec], progress: Progress | None
) -> dict[str, Path]:
    config = world.config
    start, split, end = config.day_numbers()
    split_code = int(config.split_date.replace("-", ""))
    targets = _log_targets(specs)
    log_specs = [s for group in targets.values() for s in group]
    blocks = user_blocks(config, max(len(group) for group in targets.values()))
    grouped = GroupedPolicy.build(world) if config.grouped_policy else None
    coverage = Coverage.build(world) if config.catalogue_coverage else None
    task = progress.add_task("synthesizing logs", total=len(blocks)) if progress else None
    with _open_all(out_dir, log_specs) as handles:
        written: set[str] = set()

        def emit(spec: FileSpec, frame: pl.DataFrame) -> None:
            frame.write_csv(handles[spec.name], include_header=spec.name not in written)
            written.add(spec.name)

        for i, (lo, hi) in enumerate(blocks):
            users = np.arange(lo, hi, dtype=np.int64)
            g_std = rng(config.seed, "std", i)
            std = log_chunk(
                world, users, Period(start, end), False, g_std, grouped=grouped, coverage=coverage
            )
            rnd = log_chunk(world, users, Period(split, end), True, rng(config.seed, "rand", i))
            pieces = {
                f"std:{STANDARD_PERIODS[0]}": std.filter(pl.col("date") < split_code),
                f"std:{STANDARD_PERIODS[1]}": std.filter(pl.col("date") >= split_code),
                "random": rnd,
            }
            for key, frame in pieces.items():
                group = targets[key]
                part = max(k for k in range(len(group)) if lo >= config.n_users * k // len(group))
                emit(group[part], frame)
            if progress is not None and task is not None:
                progress.advance(task)
        for spec in log_specs:
            if spec.name not in written:
                emit(spec, pl.DataFrame(schema=std.schema))
    return {s.name: out_dir / s.name for s in log_specs}
