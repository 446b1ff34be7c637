"""Fraud as plugins: scenarios plan campaigns, a planner holds prevalence and labels them.

:mod:`~simulator.fraud.contract` is what a scenario implements,
:mod:`~simulator.fraud.registry` finds scenarios by name (built-ins and the
``txnsim.fraud_scenarios`` entry points), :mod:`~simulator.fraud.planner` decides how
much fraud reaches each slice, and :mod:`~simulator.fraud.cards` blocks and reissues
detected cards.
"""

from __future__ import annotations

from simulator.fraud.contract import Campaign, Scenario, ScenarioParams
from simulator.fraud.registry import ENTRY_POINT_GROUP, check_scenarios, scenario_classes

__all__ = [
    "ENTRY_POINT_GROUP",
    "Campaign",
    "Scenario",
    "ScenarioParams",
    "check_scenarios",
    "scenario_classes",
]
