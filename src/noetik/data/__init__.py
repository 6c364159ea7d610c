"""Stage 1, data: KuaiRand files (real or synthetic) into validated, typed, cached tables,
then splits, episodes, rewards, 128-d states and offline-RL transitions.

Python API mirroring ``noetik data ...``::

    from noetik.data import load_kuairand, dataset_info
    ds = load_kuairand("KuaiRand-Pure/data")      # or load_kuairand() for built-in synthetic data
    ds.prepare()                                   # noetik data prepare
    dataset_info(ds)                               # noetik data info
"""

from __future__ import annotations

from noetik.data.dataset import LOG_KINDS, KuaiRandDataset, load_kuairand
from noetik.data.discover import DatasetFiles, discover
from noetik.data.info import DatasetInfo, LogSummary, dataset_info
from noetik.data.schema import FileKind, FileSpec, Release, expected_files

__all__ = [
    "LOG_KINDS",
    "DatasetFiles",
    "DatasetInfo",
    "FileKind",
    "FileSpec",
    "KuaiRandDataset",
    "LogSummary",
    "Release",
    "dataset_info",
    "discover",
    "expected_files",
    "load_kuairand",
]
