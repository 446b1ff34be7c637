"""The scenario plugin contract: registry names, parameter errors, third-party entry points."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.errors import ConfigError
from simulator.fraud import ENTRY_POINT_GROUP, check_scenarios, scenario_classes
from simulator.model.engine import SliceSource
from simulator.settings.run import RunSeed, RunSpec
from simulator.world.build import build_world
from tests.conftest import small_settings

BUILTINS = {
    "account_takeover",
    "card_testing",
    "compromised_merchant",
    "first_party",
    "impossible_travel",
    "lost_stolen",
}


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[importlib.metadata.EntryPoint]]:
    """Entry points of the group, as an installed distribution would publish them."""
    points: list[importlib.metadata.EntryPoint] = []
    real = importlib.metadata.entry_points

    def entry_points(**params: str) -> object:
        if params.get("group") == ENTRY_POINT_GROUP:
            return importlib.metadata.EntryPoints(points)
        return real(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    scenario_classes.cache_clear()
    yield points
    scenario_classes.cache_clear()


def _entry(name: str, value: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def test_the_builtins_are_registered() -> None:
    assert set(scenario_classes()) >= BUILTINS


def test_an_unknown_scenario_lists_the_valid_names(tmp_path: Path, cache_dir: Path) -> None:
    with pytest.raises(ConfigError) as err:
        # Settings cannot see the plugins: the command line checks them right after loading.
        check_scenarios(
            small_settings(tmp_path, cache_dir, "fraud.scenarios.skimming.share=0.1").fraud
        )
    message = str(err.value)
    assert "fraud.scenarios.skimming" in message
    assert "unknown fraud scenario 'skimming'" in message
    for name in BUILTINS:
        assert name in message


def test_a_bad_parameter_is_named(tmp_path: Path, cache_dir: Path) -> None:
    with pytest.raises(ConfigError) as err:
        check_scenarios(
            small_settings(
                tmp_path, cache_dir, "fraud.scenarios.card_testing.params.cards=[5, 2]"
            ).fraud
        )
    assert "fraud.scenarios.card_testing" in str(err.value)
    assert "cards must be [low, high]" in str(err.value)
    with pytest.raises(ConfigError) as err:
        check_scenarios(
            small_settings(
                tmp_path, cache_dir, "fraud.scenarios.lost_stolen.params.velocity=3"
            ).fraud
        )
    assert "params.velocity" in str(err.value)


def test_the_cli_exits_2_naming_the_scenario(
    tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "generate",
            "--out",
            str(tmp_path),
            "--set",
            f"cache_dir={cache_dir}",
            "--set",
            "fraud.scenarios.skimming.share=1",
        ]
    )
    assert code == 2
    assert "skimming" in capsys.readouterr().err
    assert not (tmp_path / "transactions").exists()


def test_a_published_scenario_runs_with_its_own_parameters(
    published: list[importlib.metadata.EntryPoint], tmp_path: Path, cache_dir: Path
) -> None:
    published.append(_entry("gift_card_drain", "tests.fraud_plugin:GiftCardDrain"))
    settings = small_settings(
        tmp_path,
        cache_dir,
        "fraud.target_rate=0.01",
        "fraud.scenarios.gift_card_drain.share=1.0",
        "fraud.scenarios.gift_card_drain.params.purchases=4",
        "fraud.scenarios.gift_card_drain.params.amount_usd=50",
        "fraud.scenarios.gift_card_drain.params.detection_delay="
        "{median_hours: 1, sigma: 0, max_hours: 1}",
        "fraud.scenarios.gift_card_drain.params.label_delay="
        "{median_hours: 48, sigma: 0, max_hours: 48}",
        *(f"fraud.scenarios.{name}.share=0" for name in BUILTINS),
    )
    seed = RunSeed.from_settings(settings)
    world = build_world(settings, seed)
    start = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    (part,) = SliceSource(
        world, RunSpec.from_settings(settings), seed, start, start + dt.timedelta(days=1)
    )
    fraud = part.table.filter(part.table.column("is_fraud"))
    assert abs(fraud.num_rows - part.table.num_rows * 0.01) <= 1  # held, not drawn
    assert set(fraud.column("fraud_scenario").to_pylist()) == {"gift_card_drain"}
    assert set(fraud.column("mcc").to_pylist()) == {"5947"}
    rates = settings.currency_per_usd
    for amount, currency in zip(
        fraud.column("amount").to_pylist(), fraud.column("currency").to_pylist(), strict=True
    ):
        assert float(amount) == pytest.approx(50 * rates[currency], abs=0.01)


def test_a_published_object_that_is_not_a_scenario_is_refused(
    published: list[importlib.metadata.EntryPoint],
) -> None:
    published.append(_entry("broken", "tests.fraud_plugin:NotAScenario"))
    with pytest.raises(TypeError, match="not a Scenario subclass"):
        scenario_classes()


def test_a_published_name_cannot_shadow_a_builtin(
    published: list[importlib.metadata.EntryPoint],
) -> None:
    published.append(_entry("card_testing", "tests.fraud_plugin:GiftCardDrain"))
    with pytest.raises(ValueError, match="clashes"):
        scenario_classes()
