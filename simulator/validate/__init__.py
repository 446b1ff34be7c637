"""``txnsim validate``: check a landed dataset in memory that does not grow with its size."""
