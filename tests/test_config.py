"""Settings sources, precedence, and bad input: exit 2, the field named, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.overrides import parse_overrides
from simulator.cli import main
from simulator.errors import ConfigError
from simulator.settings.loading import load_settings


def test_defaults_are_valid_and_complete() -> None:
    settings = load_settings(environ=False)
    assert settings.population.cardholders == 20000
    assert abs(sum(g.share for g in settings.mcc_groups.values()) - 1.0) < 1e-9
    assert settings.seed is None


def test_precedence_defaults_file_env_cli_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("days: 3\npopulation:\n  cardholders: 111\n  block_size: 50\nworkers: 2\n")
    assert load_settings(config, environ=False).days == 3
    # The file keeps the defaults it does not mention.
    assert load_settings(config, environ=False).population.activity_mean == 1.3
    monkeypatch.setenv("TXNSIM_POPULATION__CARDHOLDERS", "222")
    monkeypatch.setenv("TXNSIM_DAYS", "4")
    s = load_settings(config)
    assert (s.population.cardholders, s.days, s.population.block_size) == (222, 4, 50)
    s = load_settings(config, {"population": {"cardholders": 333}})
    assert (s.population.cardholders, s.days) == (333, 4)
    s = load_settings(config, {"population": {"cardholders": 333}}, ["population.cardholders=444"])
    assert s.population.cardholders == 444


def test_json_config_file(tmp_path: Path) -> None:
    # mcc_groups is a mapping setting: a file edits one group's field by its dotted key
    # (giving "mcc_groups": {...} would replace every group; see tests/test_config_layers.py).
    config = tmp_path / "c.json"
    config.write_text('{"seed": 11, "mcc_groups.fuel.share": 0.5}')
    s = load_settings(config, environ=False)
    assert s.seed == 11
    assert s.mcc_groups["fuel"].share == 0.5
    assert s.mcc_groups["fuel"].mccs == {"5541": 0.55, "5542": 0.45}
    assert len(s.mcc_groups) == 9


def test_overrides_keep_types() -> None:
    assert parse_overrides(["a.b=1", "c=[1, 2]", "d=true", "e=x"]) == {
        "a": {"b": 1},
        "c": [1, 2],
        "d": True,
        "e": "x",
    }


def test_config_hash_ignores_where_and_how_fast(tmp_path: Path) -> None:
    a = load_settings(None, {"out": str(tmp_path / "a"), "workers": 1, "seed": 1}, environ=False)
    b = load_settings(None, {"out": str(tmp_path / "b"), "workers": 4, "seed": 1}, environ=False)
    c = load_settings(None, {"seed": 2}, environ=False)
    assert a.config_hash() == b.config_hash() != c.config_hash()


BAD = [
    (
        ["--set", "population.cardholderz=5"],
        "population.cardholderz: unknown setting",
        "cardholders",
    ),
    (["--cardholders", "-5"], "population.cardholders", "greater than 0"),
    (["--set", "merchants.per_cardholder=-1"], "merchants.per_cardholder", "greater than 0"),
    (["--set", "start_date=2026-02-30"], "start_date", "YYYY-MM-DD"),
    (
        ["--set", "null_rates.merchant_city=1.5"],
        "null_rates.merchant_city",
        "less than or equal to 1",
    ),
    (
        ["--set", "travel.international_share=-0.1"],
        "travel.international_share",
        "greater than or equal to 0",
    ),
    (["--set", "null_rates.amount=0.1"], "null_rates", "nullable fields are"),
    (["--set", "writer.compression=brotli2"], "writer.compression", "zstd"),
    (["--set", "mcc_groups.fuel.mccs={'554': 1}"], "mcc_groups.fuel.mccs.554", "pattern"),
    (["--set", "mcc_groups.fuel.mccs={'0001': 1}"], "mcc_groups.fuel.mccs", "not an ISO 18245"),
    (["--set", "geography.home_countries={'XX': 1}"], "country code", "XX"),
    (["--set", "travel.destinations={'KR': 1}"], "currency_per_usd", "KRW"),
    (["--date", "2328-11-01", "--days", "30"], "start_date + days", "1970-01-01..2328"),
    (["--cardholders", "70000", "--set", "population.block_size=1"], "blocks", "raise block_size"),
]


@pytest.mark.parametrize(("args", "field", "allowed"), BAD, ids=[b[1] for b in BAD])
def test_bad_settings_exit_2_and_write_nothing(
    args: list[str],
    field: str,
    allowed: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cache_dir: Path,
) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "generate",
            "--out",
            str(out),
            "--seed",
            "1",
            "--cardholders",
            "100",
            "--set",
            f"cache_dir={cache_dir}",
            *args,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert field in err
    assert allowed in err
    assert err.count("\n") <= 4, "one clear message, not a traceback"
    assert not out.exists()


def test_bad_date_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--date", "2026-13-01", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert "--date" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_unreadable_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["generate", "--config", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o")]
    )
    assert code == 2
    assert "missing.yaml" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_config_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(config, environ=False)


def test_bad_environment_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TXNSIM_DAYS", "many")
    with pytest.raises(ConfigError, match="days"):
        load_settings()


def test_config_show_prints_effective_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["config", "show", "--format", "json", "--cardholders", "42", "--set", "days=9"]) == 0
    )
    out = capsys.readouterr().out
    assert '"cardholders": 42' in out
    assert '"days": 9' in out
