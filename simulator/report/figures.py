"""The figures of ``txnsim report``, drawn from the aggregates and encoded as PNG.

The aggregates (:mod:`simulator.report.aggregate`) are drawn with matplotlib's Agg
canvas (no pyplot, no global state). The same aggregates give the same PNG bytes: the
PNG metadata carries no software version.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from simulator.report.aggregate import (
    AMOUNT_EDGES,
    DELAY_EDGES,
    Aggregates,
    strided_coordinates,
)

__all__ = ["DPI", "FIGURES", "WEEKDAYS", "draw_figures", "png_bytes"]

#: Figure name -> (caption, size in inches); at :data:`DPI` the PNGs have fixed pixel sizes.
FIGURES: dict[str, tuple[str, tuple[float, float]]] = {
    "hour-by-weekday": ("Transactions per hour of day, one line per weekday", (10.0, 5.0)),
    "amount-by-mcc-group": ("Amount distribution (US dollars) by MCC group", (12.0, 9.0)),
    "merchant-rank-frequency": ("Merchant popularity: rank-frequency, log-log", (8.0, 6.0)),
    "map": ("Merchants (card-present) and cardholders' homes", (12.0, 6.0)),
    "fraud": ("Fraud by scenario and label delay", (12.0, 5.0)),
}
DPI = 100
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DECADE_LABELS = {3: "1k", 4: "10k", 5: "100k", 6: "1M"}


def _figure(name: str) -> Figure:
    fig = Figure(figsize=FIGURES[name][1], dpi=DPI)
    FigureCanvasAgg(fig)  # attaches itself: Agg, whatever backend the process has chosen
    # Fixed margins: constrained layout costs seconds per figure on the 3x3 grid.
    fig.subplots_adjust(left=0.08, right=0.97, bottom=0.1, top=0.92, wspace=0.2, hspace=0.4)
    return fig


def _note(fig: Figure, text: str) -> None:
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=16, color="0.35")


def _draw_hours(agg: Aggregates) -> Figure:
    fig = _figure("hour-by-weekday")
    ax = fig.add_subplot()
    hours = np.arange(24)
    for day, counts in enumerate(agg.hour_by_weekday):
        if counts.sum():
            ax.plot(
                hours,
                counts,
                marker="o",
                markersize=3,
                label=f"{WEEKDAYS[day]} ({int(counts.sum()):,})",
            )
    clock = "local hour (merchant's zone card-present, else the cardholder's)"
    ax.set_xlabel(clock if agg.local_time else "UTC hour (no catalogs: local time unknown)")
    ax.set_ylabel("transactions")
    ax.set_xticks(hours)
    ax.set_xlim(-0.5, 23.5)
    ax.grid(alpha=0.3)
    ax.set_title(f"Transactions per {'local' if agg.local_time else 'UTC'} hour by weekday")
    if agg.rows:
        ax.legend(title="weekday (rows)", fontsize="small")
    return fig


def _draw_amounts(agg: Aggregates) -> Figure:
    fig = _figure("amount-by-mcc-group")
    groups = [g for g, h in agg.amount_hist.items() if h.sum() or g != "other"]
    cols = 3
    rows = max(1, -(-len(groups) // cols))
    axes = fig.subplots(rows, cols, sharex=True, squeeze=False).ravel()
    # A linear axis over log10(amount) with decade labels: a log scale's minor-tick machinery
    # made this figure take tens of seconds on nine panels.
    edges = np.log10(AMOUNT_EDGES)
    decades = np.arange(edges[0], edges[-1] + 1)
    for ax, name in zip(axes, groups, strict=False):
        hist = agg.amount_hist[name]
        total = int(hist.sum())
        ax.stairs(hist, edges, fill=True, alpha=0.7)
        ax.set_xticks(decades, [_DECADE_LABELS.get(int(d), f"{10**d:g}") for d in decades])
        if total:
            i = int(np.searchsorted(np.cumsum(hist), total / 2))
            median = float(10 ** ((edges[i] + edges[i + 1]) / 2))
            ax.axvline(np.log10(median), color="black", linewidth=0.8, linestyle="--")
            ax.set_title(f"{name}: n={total:,}, median ~{median:,.0f} USD", fontsize="medium")
        else:
            ax.set_title(f"{name}: no transactions", fontsize="medium")
        ax.grid(alpha=0.3)
    for ax in axes[len(groups) :]:
        ax.set_visible(False)
    fig.supxlabel("amount, US dollars (log scale; converted with the run's currency_per_usd)")
    fig.supylabel("transactions")
    return fig


def _draw_rank_frequency(agg: Aggregates) -> Figure:
    fig = _figure("merchant-rank-frequency")
    ax = fig.add_subplot()
    freq = agg.rank_frequency()
    if not len(freq):
        _note(fig, "no transactions")
        ax.set_visible(False)
        return fig
    ax.loglog(np.arange(1, len(freq) + 1), freq, marker=".", linestyle="none", markersize=4)
    ax.set_xlabel("merchant rank (1 = most transactions)")
    ax.set_ylabel("transactions")
    ax.grid(alpha=0.3, which="both")
    of = "" if agg.merchants_in_catalog is None else f" of {agg.merchants_in_catalog:,}"
    ax.set_title(f"Merchant popularity: {len(freq):,}{of} merchants with a transaction")
    return fig


def _draw_map(root: Path) -> Figure:
    fig = _figure("map")
    h_lat, h_lon, holders = strided_coordinates(root, "cardholders", "home_lat", "home_lon")
    m_lat, m_lon, merchants = strided_coordinates(root, "merchants", "lat", "lon")
    if not holders and not merchants:
        _note(fig, "no catalog/ in this folder: nothing to map")
        return fig
    ax = fig.add_subplot()
    # Merchants first: shops open where people live, so cardholders would vanish beneath them.
    ax.scatter(
        m_lon,
        m_lat,
        s=10,
        alpha=0.5,
        color="tab:orange",
        marker="^",
        linewidths=0,
        label=f"card-present merchants ({len(m_lon):,} shown of {merchants:,})",
    )
    ax.scatter(
        h_lon,
        h_lat,
        s=3,
        alpha=0.6,
        color="tab:blue",
        linewidths=0,
        label=f"cardholders' homes ({len(h_lon):,} shown of {holders:,})",
    )
    lon, lat = np.concatenate([h_lon, m_lon]), np.concatenate([h_lat, m_lat])
    if len(lon):
        ax.set_xlim(max(-180.0, lon.min() - 5), min(180.0, lon.max() + 5))
        ax.set_ylim(max(-90.0, lat.min() - 5), min(90.0, lat.max() + 5))
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize="small", markerscale=3)
    ax.set_title("Where merchants and cardholders are (plain lon/lat, no basemap)")
    return fig


def _draw_fraud(agg: Aggregates) -> Figure:
    fig = _figure("fraud")
    if not agg.fraud_rows and agg.label_delay_hist is None:
        _note(fig, f"no fraud in this dataset ({agg.rows:,} transactions, none is_fraud)")
        return fig
    fig.subplots_adjust(left=0.17, wspace=0.3)  # room for scenario names
    bars, delays = fig.subplots(1, 2, squeeze=True)
    if agg.fraud_rows:
        names = sorted(agg.fraud_by_scenario, key=lambda n: (-agg.fraud_by_scenario[n], n))
        bars.barh(names[::-1], [agg.fraud_by_scenario[n] for n in names[::-1]])
        bars.xaxis.set_major_locator(MaxNLocator(integer=True))
        bars.set_xlabel("fraudulent transactions")
        bars.set_title(f"Fraud by scenario ({agg.fraud_rows:,} of {agg.rows:,} transactions)")
    else:
        bars.set_axis_off()
        bars.text(0.5, 0.5, "no fraud in this dataset", ha="center", va="center", fontsize=14)
    if agg.label_delay_hist is not None and agg.labels:
        delays.stairs(agg.label_delay_hist, DELAY_EDGES, fill=True, alpha=0.7)
        delays.set_xlabel(f"label delay, days (last bin: {DELAY_EDGES[-2]:.0f}+)")
        delays.set_ylabel("labels")
        delays.yaxis.set_major_locator(MaxNLocator(integer=True))
        delays.set_title(f"Label delay, label_time - event_time ({agg.labels:,})")
    else:
        delays.set_axis_off()
        delays.text(0.5, 0.5, "no labels/ folder", ha="center", va="center", fontsize=14)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes at :data:`DPI`, without metadata that varies by install."""
    buffer = io.BytesIO()
    # No "Software" (matplotlib version) in the PNG, so the same data gives the same bytes.
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def draw_figures(root: Path, agg: Aggregates) -> dict[str, Figure]:
    """Every figure, by name, in :data:`FIGURES` order (the map reads ``root``'s catalogs)."""
    return {
        "hour-by-weekday": _draw_hours(agg),
        "amount-by-mcc-group": _draw_amounts(agg),
        "merchant-rank-frequency": _draw_rank_frequency(agg),
        "map": _draw_map(root),
        "fraud": _draw_fraud(agg),
    }
