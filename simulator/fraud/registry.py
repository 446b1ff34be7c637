"""The scenario registry: built-ins by name, plus the ``txnsim.fraud_scenarios`` entry points."""

from __future__ import annotations

import importlib.metadata
from functools import cache
from typing import Any

from pydantic import ValidationError

from simulator.errors import ConfigError, UnknownScenarioError
from simulator.fraud.contract import Scenario
from simulator.fraud.scenarios import (
    AccountTakeover,
    CardTesting,
    CompromisedMerchant,
    FirstParty,
    ImpossibleTravel,
    LostStolen,
)
from simulator.settings.fraud import FraudConfig

__all__ = ["ENTRY_POINT_GROUP", "build_scenario", "check_scenarios", "scenario_classes"]

#: Third-party packages publish scenarios under this entry-point group.
ENTRY_POINT_GROUP = "txnsim.fraud_scenarios"

BUILTINS: tuple[type[Scenario[Any]], ...] = (
    CardTesting,
    CompromisedMerchant,
    AccountTakeover,
    LostStolen,
    ImpossibleTravel,
    FirstParty,
)


@cache
def scenario_classes() -> dict[str, type[Scenario[Any]]]:
    """Every available scenario class by name; entry points cannot shadow a built-in.

    Raises:
        ValueError: If an entry point does not load or clashes with another name.
        TypeError: If an entry point does not load to a :class:`Scenario` subclass.
    """
    found: dict[str, type[Scenario[Any]]] = {cls.name: cls for cls in BUILTINS}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:
            raise ValueError(f"entry point {ep.name} = {ep.value}: cannot load ({exc})") from exc
        if not (isinstance(cls, type) and issubclass(cls, Scenario)):
            raise TypeError(f"entry point {ep.name} = {ep.value} is not a Scenario subclass")
        if ep.name in found and found[ep.name] is not cls:
            raise ValueError(f"entry point {ep.name} = {ep.value} clashes with a scenario name")
        found[ep.name] = cls
    return found


def build_scenario(name: str, params: dict[str, Any]) -> Scenario[Any]:
    """The scenario ``name`` with validated ``params``.

    Raises:
        UnknownScenarioError: Listing the valid names.
        ConfigError: Naming each invalid parameter (``params.<field>: message``).
    """
    classes = scenario_classes()
    cls = classes.get(name)
    if cls is None:
        raise UnknownScenarioError(
            f"unknown fraud scenario {name!r}; valid names: {', '.join(sorted(classes))}"
        )
    try:
        parsed = cls.Params.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(
            f"params.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(problems) from None
    return cls(parsed)


def check_scenarios(config: FraudConfig) -> dict[str, Scenario[Any]]:
    """Every configured scenario, built: the settings check that needs the plugins.

    The settings models cannot see the plugins (they sit below them), so the command
    line calls this right after loading, and the planner builds through it.

    Raises:
        ConfigError: Naming ``fraud.scenarios.<name>`` and what is wrong with it.
    """
    built: dict[str, Scenario[Any]] = {}
    for name, scenario in config.scenarios.items():
        try:
            built[name] = build_scenario(name, scenario.params)
        except UnknownScenarioError as exc:
            raise UnknownScenarioError(f"fraud.scenarios.{name}: {exc}") from None
        except ConfigError as exc:
            raise ConfigError(f"fraud.scenarios.{name}: {exc}") from None
    return built
