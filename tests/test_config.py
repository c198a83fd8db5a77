"""Settings come from defaults, a TOML file, the environment and the command line, in that order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from iiif_server import config
from iiif_server.cli import main


def test_defaults_put_the_image_root_in_the_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DATA_DIR", "IMAGES", "CONFIG", "PORT"):
        monkeypatch.delenv(config.ENV_PREFIX + name, raising=False)
    s = config.load({"data_dir": str(tmp_path)})
    assert s.image_root == tmp_path / "images"
    assert s.port == 8000


def test_environment_overrides_toml_and_cli_overrides_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text('port = 9001\nmax_area = 1000\ntrusted_proxies = ["10.0.0.5"]\nbase_url = "https://x.org"\n')
    monkeypatch.setenv("IIIF_SERVER_PORT", "9002")
    s = config.load({}, toml)
    assert (s.port, s.max_area, s.trusted_proxies, s.base_url) == (9002, 1000, ("10.0.0.5",), "https://x.org")
    s = config.load({"port": 9003}, toml)
    assert s.port == 9003


def test_unknown_toml_setting_is_an_error(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text("prot = 1\n")
    with pytest.raises(ValueError, match="prot"):
        config.load({}, toml)


def test_bad_proxy_cidr_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IIIF_SERVER_TRUSTED_PROXIES", "10.0.0.0/8,not-a-network")
    with pytest.raises(ValueError):
        config.load({})


def test_settings_survive_the_trip_through_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    s = config.Settings(data_dir=tmp_path, images=tmp_path / "i", trusted_proxies=("::1/128", "10.0.0.0/8"),
                        proxy_hops=1, demo=False, workers=3, base_url="https://a.b")
    for key, value in s.to_env().items():
        monkeypatch.setenv(key, value)
    assert config.load({}) == s


def test_serve_help_documents_every_setting_and_its_variable() -> None:
    out = CliRunner().invoke(main, ["serve", "--help"], terminal_width=200).output
    for name in config.FIELDS:
        assert config.ENV_PREFIX + name.upper() in out, name
        assert "--" + name.replace("_", "-") in out, name


def test_every_setting_is_declared_once_and_every_source_follows_the_declaration(tmp_path: Path) -> None:
    """The option, the variable, the TOML key and the bounds of each setting all come from its one declaration:
    each source takes the same names and refuses the same out-of-bounds values."""
    serve = {p.name: p for p in main.commands["serve"].params}
    for item in config.reference():
        name, option = item["name"], serve[item["name"]]
        assert option.opts[0] == item["option"] or option.opts[0].startswith(item["option"] + "/"), name
        assert item["help"] and item["help"] in (option.help or ""), name
        low, high = item["minimum"], item["maximum"]
        if low is None and high is None:
            continue
        assert (getattr(option.type, "min", None), getattr(option.type, "max", None)) == (low, high), name
        bad = low - 1 if low is not None else high + 1
        with pytest.raises(ValueError, match=name):
            config.load({name: bad})
        toml = tmp_path / f"{name}.toml"
        toml.write_text(f"{name} = {bad}\n")
        with pytest.raises(ValueError, match=name):
            config.load({}, toml)
        os.environ[item["env"]] = str(bad)
        try:
            with pytest.raises(ValueError, match=name):
                config.load({})
        finally:
            del os.environ[item["env"]]
        out = CliRunner().invoke(main, ["serve", item["option"], str(bad)])
        assert out.exit_code == 2, name  # the command line's own bound is the same


async def test_max_age_sets_the_public_cache_lifetime(image_root: Path, tmp_path: Path) -> None:
    import httpx

    from iiif_server.web.app import create_app

    app = create_app(config.Settings(data_dir=tmp_path, images=image_root, demo=False, max_age=60))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        tile = await client.get("/iiif/3/quadrants/full/50,/0/default.jpg")
        info = await client.get("/iiif/3/quadrants/info.json")
    assert tile.headers["cache-control"] == "public, max-age=60"
    assert info.headers["cache-control"] == "public, max-age=60"
    app.state.catalogue.engine.dispose()


def test_the_console_keeps_a_way_in_and_an_issuer_comes_with_its_client(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nobody could sign in"):
        config.Settings(data_dir=tmp_path, token_sign_in=False)
    with pytest.raises(ValueError, match="oidc_client_id"):
        config.Settings(data_dir=tmp_path, oidc_issuer="https://login.example.org/realms/archive")
    with pytest.raises(ValueError, match="http"):
        config.Settings(data_dir=tmp_path, oidc_issuer="login.example.org", oidc_client_id="c")
    with pytest.raises(ValueError, match="VALUE=ROLE"):
        config.Settings(data_dir=tmp_path, oidc_role_map=("archivists",))
    s = config.Settings(data_dir=tmp_path, token_sign_in=False, oidc_issuer="https://id.example.org",
                        oidc_client_id="c", oidc_role_map=("CN=Archivists,OU=Staff=archivist",))
    assert s.oidc_secret() is None  # a public client


def test_the_client_secret_comes_from_its_file_and_is_never_shown(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s3cr3t-value\n")
    s = config.Settings(data_dir=tmp_path, oidc_issuer="https://id.example.org", oidc_client_id="c",
                        oidc_client_secret_file=tmp_path / "secret")
    assert s.oidc_secret() == "s3cr3t-value"
    given = config.Settings(data_dir=tmp_path, oidc_issuer="https://id.example.org", oidc_client_id="c",
                            oidc_client_secret="another-s3cr3t")
    assert "another-s3cr3t" not in repr(given)
    assert given.oidc_secret() == "another-s3cr3t"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        config.Settings(data_dir=tmp_path, oidc_issuer="https://id.example.org", oidc_client_id="c",
                        oidc_client_secret_file=tmp_path / "empty").oidc_secret()


def test_an_unknown_role_in_the_role_map_stops_the_start(tmp_path: Path) -> None:
    from iiif_server.web.app import create_app

    s = config.Settings(data_dir=tmp_path, demo=False, oidc_issuer="https://id.example.org", oidc_client_id="c",
                        oidc_role_map=("Archive.Boss=superuser",))
    with pytest.raises(ValueError, match="unknown role 'superuser'"):
        create_app(s)
