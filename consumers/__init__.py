"""Consumers of the simulator's event streams (the Kafka-to-Parquet sink lands here)."""

from __future__ import annotations

__all__: list[str] = []
