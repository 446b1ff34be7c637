"""``python -m simulator`` runs the command line."""

from simulator.console import txnsim

txnsim()
