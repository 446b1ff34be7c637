"""The entity catalogs as Arrow tables, with string foreign keys matching the events."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from simulator.fraud.cards import NEVER, CardRegistry
from simulator.world.build import World
from simulator.world.catalog import CHANNEL_ECOMMERCE
from simulator.world.reference import mcc_description

__all__ = ["catalog_builders", "catalog_tables"]


def _strings(values: list[str], index: np.ndarray) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(index.astype(np.int64)))


def _cards(
    world: World, registry: CardRegistry | None, end_us: int, holders: np.ndarray | None
) -> pa.Table:
    """The world's cards and the replacements issued before ``end_us``."""
    c, h = world.cards, world.holders
    base = len(c)
    n = base
    block_at = np.full(base, NEVER, dtype=np.int64)
    replaces = np.full(base, -1, dtype=np.int64)
    holder = c.holder.astype(np.int64)
    usable_at = np.zeros(base, dtype=np.int64)
    if registry is not None:
        n = len(registry)
        block_at = registry.block_at[:n]
        replaces = registry.replaces[:n]
        holder = registry.holder[:n]
        usable_at = registry.usable_at[:n]
    issued_at = np.full(n, NEVER, dtype=np.int64)
    issued_at[base:] = block_at[replaces[base:]]
    rows = np.flatnonzero(issued_at < end_us)
    rows = rows[rows >= base]
    if registry is not None:
        # By lineage, not by index (which follows the order blocks were planned in), so
        # the catalog is the same for any worker count and is the union of the shards'.
        rows = rows[np.lexsort((registry.generation[rows], registry.root[rows]))]
    rows = np.concatenate([np.arange(base), rows])
    if holders is not None:
        rows = rows[holders[holder[rows]]]
    old = rows >= base
    ids = registry.card_ids() if registry is not None else c.ids
    blocked = block_at[rows]
    return pa.table(
        {
            "card_id": ids.take(pa.array(rows)),
            "cardholder_id": h.ids.take(pa.array(holder[rows])),
            "card_type": _strings(world.card_types, _inherited(c.card_type, replaces, rows)),
            "network": _strings(world.card_networks, _inherited(c.network, replaces, rows)),
            "credit_limit": pa.array(_inherited(c.credit_limit, replaces, rows)),
            "is_primary": pa.array(_inherited(c.is_primary, replaces, rows)),
            "issued_at": _times(issued_at[rows], ~old),
            "arrives_at": _times(usable_at[rows], ~old),
            "replaces_card_id": ids.take(pa.array(np.where(old, replaces[rows], 0), mask=~old)),
            "blocked_at": _times(blocked, blocked >= end_us),
        }
    )


def _inherited(values: np.ndarray, replaces: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A replacement card keeps the attributes of the card it replaces (through the chain)."""
    base = len(values)
    src = rows.copy()
    while (src >= base).any():
        later = src >= base
        src[later] = replaces[src[later]]
    return values[src]


def _times(us: np.ndarray, null: np.ndarray) -> pa.Array:
    return pa.array(np.where(null, 0, us), pa.int64(), mask=null).cast(pa.timestamp("us", tz="UTC"))


def catalog_tables(
    world: World,
    cards: CardRegistry | None = None,
    end_us: int = NEVER,
    holders: np.ndarray | None = None,
) -> dict[str, pa.Table]:
    """``cardholders``, ``cards`` and ``merchants`` tables of the world.

    Args:
        world: The built world.
        cards: Blocks and reissues of a run; replacement cards issued before ``end_us``
            are listed after the world's cards, by the card they descend from and
            generation, each naming the card it replaces.
        end_us: End of the run (microseconds since the epoch).
        holders: Which cardholders to list, with their cards (a shard's); None: all.
    """
    return {name: build() for name, build in catalog_builders(world, cards, end_us, holders)}


def catalog_builders(
    world: World,
    cards: CardRegistry | None = None,
    end_us: int = NEVER,
    holders: np.ndarray | None = None,
) -> list[tuple[str, Callable[[], pa.Table]]]:
    """The catalogs of :func:`catalog_tables`, each built when called.

    A 10-million-cardholder world's catalogs take gigabytes as Arrow tables: a writer
    builds, lands and drops one at a time.
    """
    return [
        ("cardholders", lambda: _cardholders(world, holders)),
        ("cards", lambda: _cards(world, cards, end_us, holders)),
        ("merchants", lambda: _merchants(world)),
    ]


def _cardholders(world: World, holders: np.ndarray | None) -> pa.Table:
    h, cities = world.holders, world.cities
    home = h.home_city
    picked: np.ndarray | slice = slice(None)
    h_ids = h.ids
    if holders is not None:  # a shard's: a mask over the world's cardholders
        picked = np.flatnonzero(holders)
        h_ids, home = h.ids.take(pa.array(picked)), home[picked]
    return pa.table(
        {
            "cardholder_id": h_ids,
            "home_city": _strings(cities.name.tolist(), home),
            "home_country": _strings(world.countries, world.country_of_city[home]),
            "home_lat": pa.array(h.lat[picked]),
            "home_lon": pa.array(h.lon[picked]),
            "timezone": _strings(world.timezones, world.tz_of_city[home]),
            "activity_per_day": pa.array(h.rate[picked]),
            "spend_level": pa.array(h.spend[picked]),
            "card_count": pa.array(h.card_count[picked].astype(np.int8)),
        }
    )


def _merchants(world: World) -> pa.Table:
    m, cities = world.merchants, world.cities
    online = m.channel == CHANNEL_ECOMMERCE
    return pa.table(
        {
            "merchant_id": m.ids,
            "name": m.names,
            "mcc": _strings(world.mcc_codes, m.mcc),
            "mcc_description": _strings([mcc_description(code) for code in world.mcc_codes], m.mcc),
            "category": _strings(world.group_names, m.group),
            "channel": _strings(["card_present", "ecommerce"], m.channel),
            "country": _strings(world.countries, world.merchant_country),
            "city": _strings(cities.name.tolist(), m.city),
            "lat": pa.array(m.lat, mask=online),
            "lon": pa.array(m.lon, mask=online),
            "timezone": _strings(world.timezones, world.tz_of_city[m.city]),
            "currency": _strings(world.currencies, world.merchant_currency),
            "popularity_weight": pa.array(m.weight),
            "price_level": pa.array(m.price),
        }
    )
