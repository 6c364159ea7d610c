"""Offline transitions of logs larger than memory: built per user shard into record files on
disk, sampled a batch window at a time (:class:`DiskTransitions`)."""

from noetik.data.ondisk.build import DiskJob, ShardedLog, build_disk_transitions, transitions_key
from noetik.data.ondisk.transitions import DiskTransitions

__all__ = ["DiskJob", "DiskTransitions", "ShardedLog", "build_disk_transitions", "transitions_key"]
