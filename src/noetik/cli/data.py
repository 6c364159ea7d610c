"""``noetik data``: synthesize, prepare and describe KuaiRand datasets."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from noetik.data.dataset import LOG_KINDS, load_kuairand
from noetik.data.info import DatasetInfo, dataset_info
from noetik.data.schema import FileKind, Release
from noetik.data.store import prepare_store
from noetik.errors import ConfigError
from noetik.utils.progress import make_progress
from noetik.utils.shards import ShardEngine

data_app = typer.Typer(help="Synthesize, prepare and describe KuaiRand data.", no_args_is_help=True)
_OUT = Console()
if not _OUT.is_terminal:
    _OUT = Console(width=140)

DataDir = typer.Argument(
    None,
    help="Folder holding KuaiRand CSV files (any release, any subset). "
    "Default: the built-in synthetic KuaiRand-Pure dataset.",
    show_default=False,
)
CacheOpt = typer.Option(
    None, "--cache", help="Cache folder for the typed Parquet copies (default: ~/.cache/noetik)."
)


@data_app.command("synth")
def synth(
    out_dir: Path = typer.Argument(..., help="Folder to write the synthetic files into."),
    release: str = typer.Option("pure", "--release", help="Release to imitate: pure, 1k or 27k."),
    users: int | None = typer.Option(
        None, "--users", help="Number of users (default: the real release's, e.g. 1K: 1,000)."
    ),
    videos: int | None = typer.Option(
        None, "--videos", help="Number of videos (default: the real release's, 1K: 4,369,953)."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same files)."),
) -> None:
    """Write a synthetic KuaiRand dataset with the official file names and schemas.

    Sizes default to the real release (Pure 27,285 users x 7,583 videos; 1K 1,000 x 4,369,953,
    11.7M standard rows, about 1 to 2 minutes on 2 cores; 27K 27,285 x 32,038,725).
    """
    if release not in {r.value for r in Release}:
        raise ConfigError(f"--release must be one of pure, 1k, 27k (got '{release}')")
    from noetik.data.synthetic import SynthConfig, synthesize

    config = SynthConfig.for_release(Release(release), users=users, videos=videos, seed=seed)
    with make_progress() as progress:
        paths = synthesize(out_dir, config, progress=progress)
    for path in paths:
        _OUT.print(f"wrote {path}")


@data_app.command("prepare")
def prepare(
    data_dir: Path | None = DataDir,
    cache: Path | None = CacheOpt,
    shards: bool = typer.Option(
        False,
        "--shards",
        help="Also build the user-sharded store of the logs (always done for KuaiRand-27K, "
        "whose logs are only kept there).",
    ),
    n_shards: int | None = typer.Option(
        None,
        "--n-shards",
        metavar="N",
        help="Number of user shards (default: about 3M standard-log rows each); implies --shards.",
    ),
    ray: bool = typer.Option(
        False,
        "--ray",
        help="Build the shard store with Ray tasks (one per log file, then one per shard) on a "
        "Ray instance started on this machine's cores, or on the cluster of --ray-address; "
        "implies --shards. Same store as without it. Needs noetik[ray].",
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        metavar="ADDRESS",
        help="Join the Ray cluster at ADDRESS (HOST:PORT of `ray start --head`, or 'auto'); "
        "implies --ray. Every node must see the data and the cache at the same paths.",
    ),
) -> None:
    """Validate every file against the schema and cache it as typed Parquet (once); with
    --shards (or for KuaiRand-27K) also write the user-sharded store of the logs."""
    ds = load_kuairand(data_dir, cache_dir=cache)
    use_ray = ray or ray_address is not None
    sharded = shards or use_ray or n_shards is not None or ds.release is Release.K27
    if n_shards is not None and n_shards < 1:
        raise ConfigError(f"--n-shards must be >= 1, got {n_shards}")
    with contextlib.ExitStack() as stack:
        engine: ShardEngine | None = None
        if use_ray:  # Ray is imported here only
            from noetik.utils.ray_engine import ray_session

            engine = stack.enter_context(ray_session(ray_address))
        progress = stack.enter_context(make_progress())
        # 27K logs live only in the shard store; other releases cache every file as well
        in_store = set(LOG_KINDS) if ds.release is Release.K27 else set()
        rows = ds.prepare(progress=progress, kinds=[k for k in FileKind if k not in in_store])
        store = prepare_store(ds, engine, progress, n_shards) if sharded else None
    if store is not None:
        rows |= {name: n for name, n in store.manifest["source_rows"].items() if n is not None}
    present = [spec.name for spec in ds.files.present if spec.name in rows]
    _print_presence(ds.files.release.value, present, [s.name for s in ds.files.missing])
    _OUT.print(f"cache: {ds.cache.directory}")
    if store is not None:
        counts = ", ".join(f"{kind.value} {sum(store.shard_rows(kind)):,}" for kind in store.kinds)
        _OUT.print(f"shard store: {store.n_shards} shards ({counts} rows) in {store.layout.root}")


@data_app.command("info")
def info(
    data_dir: Path | None = DataDir,
    cache: Path | None = CacheOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Release, files present and missing, rows, users, videos, dates and feedback rates."""
    summary = dataset_info(load_kuairand(data_dir, cache_dir=cache))
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
        return
    _print_info(summary)


def _print_presence(release: str, present: list[str], missing: list[str]) -> None:
    _OUT.print(f"release: [bold]{release}[/bold]")
    _OUT.print(f"present ({len(present)}): " + (", ".join(present) or "none"))
    _OUT.print(f"missing ({len(missing)}): " + (", ".join(missing) or "none"))


def _print_info(summary: DatasetInfo) -> None:
    _print_presence(summary.release, summary.present, summary.missing)
    files = Table("file", "rows", title="Files")
    for name, n in summary.rows.items():
        files.add_row(name, f"{n:,}")
    _OUT.print(files)
    if summary.n_users is not None:
        _OUT.print(f"users in user features: {summary.n_users:,}")
    if summary.n_videos is not None:
        _OUT.print(f"videos in basic features: {summary.n_videos:,}")
    logs = Table(
        "log",
        "rows",
        "users",
        "videos",
        "dates",
        "click",
        "long_view",
        "like",
        "duration=0",
        title="Logs",
    )
    for name, log in summary.logs.items():
        logs.add_row(
            name.removeprefix("log_"),
            f"{log.rows:,}",
            f"{log.users:,}",
            f"{log.videos:,}",
            f"{log.first_date}-{log.last_date}",
            f"{log.rates['is_click']:.3f}",
            f"{log.rates['long_view']:.3f}",
            f"{log.rates['is_like']:.4f}",
            f"{log.duration_zero_share:.2%}",
        )
    _OUT.print(logs)


@data_app.command("episodes")
def episodes(
    data_dir: Path | None = DataDir,
    cache: Path | None = CacheOpt,
    mode: str = typer.Option("session", "--mode", help="session (inactivity gap) or window."),
    gap: float = typer.Option(30.0, "--gap-minutes", help="Inactivity gap that ends a session."),
    window: int = typer.Option(10, "--window", help="Steps per episode in window mode."),
    n: int = typer.Option(3, "--n", help="How many episodes to print."),
) -> None:
    """Build offline-RL transitions from the standard log and print a few episodes."""
    from noetik.data.episodes import EpisodeConfig
    from noetik.data.transitions import build_transitions, format_episodes

    config = EpisodeConfig(mode=mode, session_gap_minutes=gap, window=window)  # type: ignore[arg-type]
    ds = load_kuairand(data_dir, cache_dir=cache)
    with make_progress() as progress:
        data = build_transitions(ds, episodes=config, progress=progress)
    n_episodes = int(data.done.sum())
    _OUT.print(
        f"{len(data):,} transitions in {n_episodes:,} episodes; obs {data.obs.shape} "
        f"{data.obs.dtype}, {data.n_actions:,} actions"
    )
    typer.echo(format_episodes(data, n=n))
