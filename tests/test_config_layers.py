"""Layering: a mapping setting given replaces the default whole; sections merge key by key.

Every ``dict[...]`` field of the settings models is exercised through each source (YAML
file, JSON file, environment variable, ``--set``), and the result must be exactly the
mapping given. ``test_every_mapping_setting_is_covered`` fails when a new one is added
without a case here.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from runtime.layers import Assignment, explain_lines, merge
from simulator.cli import main
from simulator.errors import ConfigError
from simulator.settings.loading import load_settings, load_settings_explained
from simulator.settings.models import Settings

DEFAULTS = load_settings(environ=False).model_dump(mode="json")


def _at(data: Any, path: str) -> Any:
    for key in path.split("."):
        data = data[key]
    return data


#: One concrete path per mapping field, with a mapping that differs from the default in
#: both directions (entries dropped, entries added or changed), so a merge cannot pass.
CASES: dict[str, tuple[str, Any]] = {
    "CardsConfig.types": ("population.cards.types", {"credit": 1.0}),
    "CardsConfig.networks": ("population.cards.networks", {"visa": 0.5, "unionpay": 0.5}),
    "GeographyConfig.home_countries": ("geography.home_countries", {"JP": 0.5, "GB": 0.5}),
    "TravelConfig.destinations": ("travel.destinations", {"KR": 1.0}),
    "TravelConfig.price_levels": ("travel.price_levels", {"KR": 0.62}),
    "Settings.mcc_groups": ("mcc_groups", {"fuel": _at(DEFAULTS, "mcc_groups.fuel")}),
    "MccGroupConfig.mccs": ("mcc_groups.fuel.mccs", {"5541": 1.0}),
    "MccGroupConfig.amount_by_mcc": (
        "mcc_groups.retail.amount_by_mcc",
        {
            "5310": {
                "median": 50.0,
                "sigma": 0.5,
                "minimum": 1.0,
                "maximum": 500.0,
                "price_points": [],
                "price_point_share": 0.0,
            }
        },
    ),
    "Settings.pos_entry_modes": ("pos_entry_modes", {"chip": 0.7, "contactless": 0.3}),
    "Settings.currency_per_usd": ("currency_per_usd", {"USD": 1.0, "JPY": 150.0, "KRW": 1380.0}),
    "Settings.null_rates": ("null_rates", {"pos_entry_mode": 0.5}),
    "FraudConfig.scenarios": (
        "fraud.scenarios",
        {"lost_stolen": _at(DEFAULTS, "fraud.scenarios.lost_stolen")},
    ),
    "FraudConfig.hotspots": (
        "fraud.hotspots",
        {"cash": {"mccs": ["6011"], "amount_usd": [20.0, 400.0], "weight": 1.0}},
    ),
    # Replaced whole like any mapping; the scenario's own model then fills its defaults.
    "ScenarioConfig.params": (
        "fraud.scenarios.lost_stolen.params",
        {
            "purchases": [1, 2],
            "mean_gap_minutes": 10,
            "cashout_share": 0.1,
            "detection_delay": {"median_hours": 1, "sigma": 0.1, "max_hours": 2},
            "label_delay": {"median_hours": 5, "sigma": 0.1, "max_hours": 9},
        },
    ),
}


def _mapping_fields(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    """``Model.field`` of every dict-valued field reachable from ``model``."""
    found: set[str] = set()
    seen.add(model)
    for name, info in model.model_fields.items():
        for annotation in _types_in(info.annotation):
            if typing.get_origin(annotation) is dict:
                found.add(f"{model.__name__}.{name}")
            is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
            if is_model and annotation not in seen:
                found |= _mapping_fields(annotation, seen)
    return found


def _types_in(annotation: Any) -> list[Any]:
    inner = [t for arg in typing.get_args(annotation) for t in _types_in(arg)]
    return [annotation, *inner]


def test_every_mapping_setting_is_covered() -> None:
    assert _mapping_fields(Settings, set()) == set(CASES)


def _nested(path: str, value: Any) -> dict[str, Any]:
    """``value`` as a file gives it.

    Nested by section down to the first mapping setting on the path, then one dotted key
    (nesting inside a mapping setting would replace it).
    """
    keys = path.split(".")
    depth, model = 0, Settings
    while depth < len(keys) - 1:
        annotation = model.model_fields[keys[depth]].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        depth, model = depth + 1, annotation
    nested: Any = {".".join(keys[depth:]): value}
    for key in reversed(keys[:depth]):
        nested = {key: nested}
    return nested


def _load(source: str, path: str, value: Any, tmp_path: Path) -> dict[str, Any]:
    if source == "yaml":
        config = tmp_path / "c.yaml"
        config.write_text(yaml.safe_dump(_nested(path, value)))
        settings = load_settings(config, environ=False)
    elif source == "json":
        config = tmp_path / "c.json"
        config.write_text(json.dumps(_nested(path, value)))
        settings = load_settings(config, environ=False)
    elif source == "env":
        name = "TXNSIM_" + path.upper().replace(".", "__")
        settings = load_settings(environ={name: json.dumps(value)})
    else:
        settings = load_settings(overrides=[f"{path}={json.dumps(value)}"], environ=False)
    return settings.model_dump(mode="json")


@pytest.mark.parametrize("source", ["yaml", "json", "env", "set"])
@pytest.mark.parametrize("field", sorted(CASES))
def test_a_mapping_given_replaces_the_default(field: str, source: str, tmp_path: Path) -> None:
    path, value = CASES[field]
    assert _at(DEFAULTS, path) != value
    assert _at(_load(source, path, value, tmp_path), path) == value


def test_sections_still_merge_key_by_key(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("population:\n  cardholders: 5\n  cards:\n    primary_share: 0.5\n")
    data = load_settings(config, environ=False).model_dump(mode="json")
    assert data["population"]["cardholders"] == 5
    assert data["population"]["cards"]["primary_share"] == 0.5
    assert data["population"]["block_size"] == DEFAULTS["population"]["block_size"]
    assert data["population"]["cards"]["types"] == DEFAULTS["population"]["cards"]["types"]


def test_a_dotted_key_edits_one_entry(tmp_path: Path) -> None:
    by_set = load_settings(
        overrides=["geography.home_countries.JP=0.5", "mcc_groups.fuel.share=0.3"], environ=False
    )
    by_env = load_settings(
        environ={
            "TXNSIM_GEOGRAPHY__HOME_COUNTRIES__JP": "0.5",
            "txnsim_mcc_groups__FUEL__share": "0.3",  # names fold case; JP keeps its own
        }
    )
    config = tmp_path / "c.yaml"
    config.write_text('geography:\n  home_countries.JP: 0.5\n"mcc_groups.fuel.share": 0.3\n')
    by_file = load_settings(config, environ=False)
    for settings in (by_set, by_env, by_file):
        assert settings.geography.home_countries == {"US": 1.0, "JP": 0.5}
        assert settings.mcc_groups["fuel"].share == 0.3
        assert settings.mcc_groups["fuel"].mccs == {"5541": 0.55, "5542": 0.45}
        assert len(settings.mcc_groups) == len(DEFAULTS["mcc_groups"])


def test_a_later_mapping_replaces_earlier_entry_edits() -> None:
    merged = merge(
        Settings,
        [
            Assignment(("geography", "home_countries"), {"US": 1.0}, "default"),
            Assignment(("geography", "home_countries", "JP"), 1.0, "env"),
            Assignment(("geography", "home_countries"), {"GB": 1.0}, "--set"),
        ],
    )
    assert merged.data == {"geography": {"home_countries": {"GB": 1.0}}}
    assert merged.origins == {("geography", "home_countries"): "--set"}


def test_environment_leaves_other_prefixes_and_refuses_bad_json() -> None:
    settings = load_settings(environ={"TXNSIM_SINK_KAFKA__GROUP": "g", "TXNSIM_DAYS": "3"})
    assert settings.days == 3
    with pytest.raises(Exception, match="TXNSIM_GEOGRAPHY__HOME_COUNTRIES"):
        load_settings(environ={"TXNSIM_GEOGRAPHY__HOME_COUNTRIES": "{JP: 1"})


def test_slice_hours_come_from_the_environment_as_text_and_must_tile_a_day() -> None:
    # A variable's value is a string: "6" is six hours (a Literal[1, ..., 24] refused it).
    assert load_settings(environ={"TXNSIM_SLICE_HOURS": "6"}).slice_hours == 6
    with pytest.raises(ConfigError, match=r"slice_hours: .*must divide a day.*got '7'"):
        load_settings(environ={"TXNSIM_SLICE_HOURS": "7"})


def test_a_kafka_compression_level_must_fit_its_codec() -> None:
    kafka = load_settings(environ={"TXNSIM_KAFKA__COMPRESSION_LEVEL": "1"}).kafka
    assert (kafka.compression, kafka.compression_level) == ("zstd", 1)
    with pytest.raises(ConfigError, match=r"kafka: .*zstd levels are 1-22 \(got 23\)"):
        load_settings(environ={"TXNSIM_KAFKA__COMPRESSION_LEVEL": "23"})
    with pytest.raises(ConfigError, match=r"kafka: .*compression 'snappy' takes no level"):
        load_settings(
            environ={
                "TXNSIM_KAFKA__COMPRESSION": "snappy",
                "TXNSIM_KAFKA__COMPRESSION_LEVEL": "3",
            }
        )


def test_config_show_prints_only_the_mapping_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "jp.yaml"
    config.write_text("geography:\n  home_countries: {JP: 1.0}\n")
    assert main(["config", "show", "--config", str(config), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["geography"]["home_countries"] == {"JP": 1.0}


def test_explain_names_where_each_value_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("days: 3\ngeography:\n  home_countries: {JP: 1.0}\n")
    monkeypatch.setenv("TXNSIM_POPULATION__BLOCK_SIZE", "100")
    monkeypatch.setenv("TXNSIM_TRAVEL__DESTINATIONS__KR", "0.2")
    args = ["config", "show", "--explain", "--format", "json", "--config", str(config)]
    args += ["--cardholders", "42", "--set", "seed=5", "--set", "currency_per_usd.KRW=1380"]
    assert main(args) == 0
    shown = json.loads(capsys.readouterr().out)
    expected = {
        "days": (3, f"file {config}"),
        "geography.home_countries": ({"JP": 1.0}, f"file {config}"),
        "population.block_size": (100, "env TXNSIM_POPULATION__BLOCK_SIZE"),
        "population.cardholders": (42, "flag"),
        "seed": (5, "--set"),
        "population.activity_mean": (1.3, "default"),
        "kafka.transactions.records": (100000, "model default"),
    }
    for key, (value, source) in expected.items():
        assert shown[key] == {"value": value, "source": source}, key
    assert shown["travel.destinations"]["source"] == "default, env TXNSIM_TRAVEL__DESTINATIONS__KR"
    assert shown["travel.destinations"]["value"]["KR"] == 0.2
    assert shown["currency_per_usd"]["source"] == "default, --set"
    assert shown["mcc_groups.fuel.amount.median"]["source"] == "default"


def test_explain_output_is_a_config_file_that_gives_the_same_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides = [
        "--set",
        'geography.home_countries={"JP": 1.0}',
        "--set",
        "mcc_groups.fuel.share=1",
    ]
    assert main(["config", "show", "--explain", *overrides]) == 0
    explained = capsys.readouterr().out
    assert 'geography.home_countries: {"JP":1.0}  # --set' in explained.splitlines()
    config = tmp_path / "explained.yaml"
    config.write_text(explained)
    again, origins = load_settings_explained(config, environ=False)
    direct = load_settings(overrides=overrides[1::2], environ=False)
    assert again.model_dump(exclude={"cache_dir"}) == direct.model_dump(exclude={"cache_dir"})
    lines = explain_lines(Settings, again.model_dump(mode="json"), origins)
    assert {source for _, _, source in lines} == {f"file {config}"}


def test_environ_false_reads_no_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    # pydantic-settings' own source used to merge these in even with environ=False.
    monkeypatch.setenv("TXNSIM_GEOGRAPHY__HOME_COUNTRIES", '{"GB": 1.0}')
    assert load_settings(environ=False).geography.home_countries == {"US": 1.0}
    assert load_settings().geography.home_countries == {"GB": 1.0}
