"""The entity catalogs as Arrow tables, with string foreign keys matching the events."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from simulator.catalog import CHANNEL_ECOMMERCE
from simulator.reference import mcc_description
from simulator.world import World

__all__ = ["catalog_tables"]


def _strings(values: list[str], index: np.ndarray) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(index.astype(np.int64)))


def catalog_tables(world: World) -> dict[str, pa.Table]:
    """``cardholders``, ``cards`` and ``merchants`` tables of the world."""
    h, c, m, cities = world.holders, world.cards, world.merchants, world.cities
    card_cfg = world.settings.population.cards
    home = h.home_city
    cardholders = pa.table(
        {
            "cardholder_id": h.ids,
            "home_city": pa.array(cities.name[home].tolist(), pa.string()),
            "home_country": _strings(world.countries, world.country_of_city[home]),
            "home_lat": pa.array(h.lat),
            "home_lon": pa.array(h.lon),
            "timezone": _strings(world.timezones, world.tz_of_city[home]),
            "activity_per_day": pa.array(h.rate),
            "spend_level": pa.array(h.spend),
            "card_count": pa.array(h.card_count.astype(np.int8)),
        }
    )
    cards = pa.table(
        {
            "card_id": c.ids,
            "cardholder_id": h.ids.take(pa.array(c.holder.astype(np.int64))),
            "card_type": _strings(list(card_cfg.types), c.card_type),
            "network": _strings(list(card_cfg.networks), c.network),
            "credit_limit": pa.array(c.credit_limit),
            "is_primary": pa.array(c.is_primary),
        }
    )
    online = m.channel == CHANNEL_ECOMMERCE
    merchants = pa.table(
        {
            "merchant_id": m.ids,
            "name": m.names,
            "mcc": _strings(world.mcc_codes, m.mcc),
            "mcc_description": _strings([mcc_description(code) for code in world.mcc_codes], m.mcc),
            "category": _strings(world.group_names, m.group),
            "channel": _strings(["card_present", "ecommerce"], m.channel),
            "country": _strings(world.countries, world.country_of_city[m.city]),
            "city": pa.array(cities.name[m.city].tolist(), pa.string()),
            "lat": pa.array(m.lat, mask=online),
            "lon": pa.array(m.lon, mask=online),
            "timezone": _strings(world.timezones, world.tz_of_city[m.city]),
            "currency": _strings(
                world.currencies, world.currency_of_country[world.country_of_city[m.city]]
            ),
            "popularity_weight": pa.array(m.weight),
            "price_level": pa.array(m.price),
        }
    )
    return {"cardholders": cardholders, "cards": cards, "merchants": merchants}
