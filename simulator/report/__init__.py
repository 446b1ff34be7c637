"""``txnsim report``: a self-contained HTML profile of a landed folder."""
