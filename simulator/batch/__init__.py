"""The batch job: simulate a span of days and land it as a date-partitioned Parquet lake.

Folder output, catalog tables, labels by label date and the manifest written last.
"""

from __future__ import annotations

__all__: list[str] = []
