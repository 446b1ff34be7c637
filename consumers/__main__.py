"""``python -m consumers``: the same as ``txnsim-sink``."""

from consumers.cli import entry

entry()
