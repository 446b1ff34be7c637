"""``txnsim report``: a self-contained HTML page of figures about a landed folder.

This module owns the entry point and the page. The folder is reduced to small
aggregates in one bounded pass (:mod:`simulator.report.aggregate`), drawn into PNG
figures (:mod:`simulator.report.figures`) written next to the HTML and embedded in it
as base64. The same folder gives the same bytes: nothing in the page depends on the
wall clock.
"""

from __future__ import annotations

import base64
import html
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from simulator.errors import OutputError
from simulator.report.aggregate import Aggregates, aggregate, read_manifest
from simulator.report.figures import FIGURES, draw_figures, png_bytes
from simulator.report.traces import JUMP_KMH, FraudTrace

__all__ = ["render_report"]

log = logging.getLogger("txnsim.report")


def _facts(manifest: Mapping[str, Any], agg: Aggregates) -> list[tuple[str, str]]:
    counts = manifest.get("row_counts", {})
    facts = [
        ("seed", f"{manifest.get('seed', 'unknown')} ({manifest.get('seed_source', 'unknown')})"),
        (
            "simulated",
            f"{manifest.get('simulated_start', '?')} to {manifest.get('simulated_end', '?')}",
        ),
        ("partitions", ", ".join(f"{d}: {n:,}" for d, n in manifest.get("partitions", {}).items())),
        ("rows", ", ".join(f"{t} {n:,}" for t, n in counts.items())),
        ("transactions read", f"{agg.rows:,}"),
        ("config hash", str(manifest.get("config_hash", "unknown"))[:12]),
        ("txnsim version", str(manifest.get("package", {}).get("version", "unknown"))),
    ]
    if not manifest:
        facts.insert(0, ("manifest", "none: incomplete run or not landed by txnsim generate"))
    if agg.unconverted:
        facts.append(("amounts without a USD rate", f"{agg.unconverted:,} (left out)"))
    return facts


def _number(value: float, fmt: str) -> str:
    return "-" if value != value else format(value, fmt)  # NaN: nothing measured


def _traces_table(traces: list[FraudTrace]) -> str:
    """Fraud against its card's history, per scenario; empty without fraud."""
    if not traces:
        return ""
    head = (
        "<tr><th>scenario</th><th>rows</th><th>amount / card's usual (median)</th>"
        "<th>at a new merchant</th><th>minutes since last use (median)</th>"
        "<th>card's transactions in the hour (median)</th>"
        "<th>km/h from last card-present use (median)</th>"
        f"<th>of those over {JUMP_KMH:,.0f} km/h</th></tr>"
    )
    body = "\n".join(
        f"<tr><td>{html.escape(t.name)}</td><td>{t.rows:,}</td>"
        f"<td>{_number(t.amount_vs_usual, '.2f')}</td><td>{_number(t.new_merchant, '.0%')}</td>"
        f"<td>{_number(t.minutes_since_last, ',.0f')}</td><td>{_number(t.burst, '.0f')}</td>"
        f"<td>{_number(t.kmh, ',.0f')}</td><td>{_number(t.jumps, '.0%')}</td></tr>"
        for t in traces
    )
    return (
        '<h2 id="fraud-traces">Fraud traces in card histories</h2>\n'
        "<p>Each transaction against its own card's earlier ones: the usual amount is the "
        "median of the card's last 20. The last row is the genuine transactions of the same "
        "cards.</p>\n"
        f'<table class="traces">\n{head}\n{body}\n</table>'
    )


def _html(
    root: Path,
    facts: list[tuple[str, str]],
    pngs: dict[str, tuple[str, bytes]],
    traces: list[FraudTrace],
) -> str:
    rows = "\n".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts
    )
    figures = "\n".join(
        f'<figure id="{name}">\n<img alt="{html.escape(FIGURES[name][0])}" '
        f'src="data:image/png;base64,{base64.b64encode(data).decode()}">\n'
        f"<figcaption>{html.escape(FIGURES[name][0])} "
        f'(<a href="{html.escape(file)}">{html.escape(file)}</a>)</figcaption>\n</figure>'
        for name, (file, data) in pngs.items()
    )
    title = f"txnsim report: {html.escape(root.name or str(root))}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1250px; }}
th {{ text-align: left; padding-right: 1em; }}
table.traces td {{ padding-right: 1em; text-align: right; }}
table.traces td:first-child {{ text-align: left; }}
figure {{ margin: 2em 0; }} img {{ max-width: 100%; }}
</style>
</head>
<body>
<h1>{title}</h1>
<table>
{rows}
</table>
{_traces_table(traces)}
{figures}
</body>
</html>
"""


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def render_report(root: Path, out: Path) -> dict[str, Path]:
    """Write ``out`` (HTML) and one PNG per figure next to it, named ``<stem>-<figure>.png``.

    Returns:
        The path of each figure's PNG, by figure name (in :data:`FIGURES` order).

    Raises:
        ConfigError: the folder is missing or unreadable (exit 2).
        OutputError: the report cannot be written (exit 1).
    """
    agg = aggregate(root)
    figures = draw_figures(root, agg)
    pngs: dict[str, tuple[str, bytes]] = {}
    written: dict[str, Path] = {}
    for name, fig in figures.items():
        file = f"{out.stem}-{name}.png"
        pngs[name] = (file, png_bytes(fig))
        written[name] = out.with_name(file)
        _write(written[name], pngs[name][1])
    page = _html(root, _facts(read_manifest(root), agg), pngs, agg.fraud_traces)
    _write(out, page.encode())
    log.info("report written", extra={"out": str(out), "rows": agg.rows})
    return written
