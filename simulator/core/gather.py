"""Gathers from small tables, by the paths numpy runs fastest.

numpy gathers ``table[index]`` by a fast loop only when ``index`` is one array of its
native integer type (``intp``). Two index arrays (``table[rows, cols]``), or an index of
another integer type (a city's ``int32`` row, a merchant's ``int16`` category), go
through its general iterator instead, which casts and steps index by index: a 2-D
gather of 40,000 values took 142 us against 55 us for the same values taken by flat
position, and a 1-D gather by an ``int32`` index 100 us against 49 us by an ``intp``
one (numpy 2.4, this machine). The values are the same either way.
"""

from __future__ import annotations

import numpy as np

__all__ = ["take2"]


def take2(table: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``table[rows, cols]`` for a C-contiguous 2-D table, through one flat take.

    Negative rows count from the end, as in ``table[rows, cols]``; ``cols`` must be in
    ``[0, table.shape[1])``.
    """
    flat = rows.astype(np.intp) * table.shape[1]
    flat += cols
    return table.ravel().take(flat)
