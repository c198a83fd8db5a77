"""Partners by name: a network rule may name its institution (`reading-room=192.0.2.0/24 "Partner archive X"`),
from the command line, the environment or the settings file, commas in the name included. The overview and the
IIIF Collection say where restricted material can be consulted, naming them; the audit log and the console
name the partner a granted access came from."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from worlds import OUTSIDE, READING_ROOM_V4, READING_ROOM_V6, World, audit_lines, image_url, sign_in

from iiif_server import config
from iiif_server.auth.networks import NetworkRules
from iiif_server.runtime import observe

NAMED = ('reading-room=192.0.2.0/24 "Archive, Brussels"', 'reading-room=2001:db8:1::/48 "Partner archive X"',
         "staff=198.51.100.0/24")


@pytest.fixture
def world(console_world: World) -> World:
    """The staff console's world (an audit log, a staff network), its reading rooms named."""
    console_world.settings = config.Settings(**{**console_world.settings.__dict__, "networks": NAMED})
    return console_world


def test_a_rule_names_its_institution_in_quotes_wherever_it_is_set(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("IIIF_SERVER_NETWORKS", ",".join(NAMED))
    assert config.load().networks == NAMED  # the comma inside the quotes stays in the name
    monkeypatch.delenv("IIIF_SERVER_NETWORKS")
    toml = tmp_path / "settings.toml"
    toml.write_text("networks = ['reading-room=192.0.2.0/24 \"Archive, Brussels\"']\n")
    assert config.load(config_file=toml).networks == (NAMED[0],)
    rules = NetworkRules.parse(NAMED, ("public", "reading-room", "staff"))
    assert rules.match(ipaddress.ip_address(READING_ROOM_V4)) == ("reading-room", "Archive, Brussels")
    assert rules.match(ipaddress.ip_address(READING_ROOM_V6)) == ("reading-room", "Partner archive X")
    assert rules.match(ipaddress.ip_address("198.51.100.7")) == ("staff", None)
    assert rules.match(ipaddress.ip_address(OUTSIDE)) == (None, None)
    assert rules.partners("reading-room") == ["Archive, Brussels", "Partner archive X"]
    with pytest.raises(ValueError, match="double quotes"):
        NetworkRules.parse(["reading-room=192.0.2.0/24 Partner archive X"], ("public", "reading-room"))
    with pytest.raises(ValueError, match="double quotes"):  # said before the server starts
        config.load({"networks": 'reading-room=192.0.2.0/24 "Unclosed'})


async def test_the_overview_and_the_iiif_collection_name_the_partners(world: World) -> None:
    c = world.client(world.app(consult="reading-room=in the reading room of Kazerne Dossin, Mechelen"))
    home = (await c.get("/")).text
    sentence = ("Can be consulted in the reading room of Kazerne Dossin, Mechelen. Partner institutions: "
                "Archive, Brussels, Partner archive X.")
    assert sentence in home and home.count(sentence) == 2  # letters and diaries; not maps (public)
    collection = (await c.get("/iiif/presentation/letters/collection")).json()
    pairs = {p["label"]["en"][0]: p["value"]["en"][0] for p in collection["metadata"]}
    assert pairs["Access"] == sentence
    page = (await c.get("/collections/letters")).text
    assert "Archive, Brussels" in page


async def test_the_audit_log_and_the_console_name_the_partner_of_a_granted_access(world: World) -> None:
    room = world.client(peer=READING_ROOM_V4)
    assert (await room.get(image_url("letters/d1/p1"))).status_code == 200
    assert (await world.client(peer=READING_ROOM_V6).get(image_url("diaries/d1/p1"))).status_code == 200
    observe.flush_logs()
    granted = [(e["identifier"], e["network"], e["partner"]) for e in audit_lines(world) if e.get("access")]
    assert granted == [("letters/d1/p1", "reading-room", "Archive, Brussels"),
                       ("diaries/d1/p1", "reading-room", "Partner archive X")]
    staff, _ = await sign_in(world)
    audit = (await staff.get("/staff/audit")).text
    assert "(reading-room: Archive, Brussels)" in audit and "(reading-room: Partner archive X)" in audit
    found = (await staff.get("/staff/audit", params={"holder": "brussels"})).text
    assert "letters/d1/p1" in found and "diaries/d1/p1" not in found
    networks = (await staff.get("/staff/networks")).text
    assert "192.0.2.0/24 (Archive, Brussels)" in networks and "198.51.100.0/24," not in networks
