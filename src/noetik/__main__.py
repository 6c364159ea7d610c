"""``python -m noetik``: the same as the ``noetik`` command."""

from noetik.cli.main import entry

entry()
