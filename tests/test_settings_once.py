"""One declaration per setting: the command line, the environment and the TOML file accept the same values
and refuse the same ones, and the documentation's reference lists what the code declares."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from iiif_server import config
from iiif_server.cli import main

BOUNDED = [(name, f.metadata["minimum"], f.metadata["maximum"]) for name, f in config.FIELDS.items()
           if f.metadata.get("minimum") is not None or f.metadata.get("maximum") is not None]


def test_some_settings_are_bounded() -> None:
    assert len(BOUNDED) >= 5  # the parametrised test below would otherwise test nothing


@pytest.mark.parametrize(("name", "low", "high"), BOUNDED, ids=[b[0] for b in BOUNDED])
def test_a_bound_holds_the_same_from_every_source(
    name: str, low: int | None, high: int | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for var in [config.env_name(n) for n in config.FIELDS] + [config.ENV_PREFIX + "CONFIG"]:
        monkeypatch.delenv(var, raising=False)
    outside = low - 1 if low is not None else high + 1
    inside = low if low is not None else high
    # the command line: click refuses it before anything starts, naming the option
    result = CliRunner().invoke(main, ["serve", config.option_name(name), str(outside)])
    assert result.exit_code == 2 and config.option_name(name) in result.output, result.output
    # the environment and the TOML file: the same bound, saying which setting
    monkeypatch.setenv(config.env_name(name), str(outside))
    with pytest.raises(ValueError, match=name):
        config.check_bounds(config.load({"data_dir": str(tmp_path)}))
    monkeypatch.delenv(config.env_name(name))
    toml = tmp_path / "s.toml"
    toml.write_text(f"{name} = {outside}\n")
    with pytest.raises(ValueError, match=name):
        config.check_bounds(config.load({"data_dir": str(tmp_path)}, toml))
    toml.write_text(f"{name} = {inside}\n")
    settings = config.load({"data_dir": str(tmp_path)}, toml)
    config.check_bounds(settings)
    assert getattr(settings, name) == inside


def test_the_reference_lists_every_declared_setting_once() -> None:
    rows = config.reference()
    assert [r["name"] for r in rows] == list(config.FIELDS)
    assert len({r["option"] for r in rows}) == len({r["env"] for r in rows}) == len(rows)
    for row in rows:
        assert row["help"], f"{row['name']} has no help"
