"""``python -m consumers``: the same as ``txnsim-sink``."""

from consumers.console import txnsim_sink

txnsim_sink()
