"""`iiif-server persons import`: the archive's list of people, every row accounted for, re-runs replacing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from persons_world import PEOPLE_CSV, add_collections
from sqlalchemy import select

from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import CONFIRMED, LINE, PORTRAIT, Activity, Collection, Person, PersonLink, Transport
from iiif_server.ingest.persons import import_persons, parse_birth


def write(tmp_path: Path, text: str, name: str = "people.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def people(catalogue: Catalogue) -> dict[str, Person]:
    with catalogue.sessions() as session:
        return {p.id: p for p in session.scalars(select(Person))}


def links(catalogue: Catalogue) -> list[tuple[str, str, str, str]]:
    with catalogue.sessions() as session:
        return sorted((lk.person_id, lk.kind, lk.box, lk.state) for lk in session.scalars(select(PersonLink)))


def test_partial_birth_dates_are_kept_as_precise_as_given() -> None:
    assert parse_birth("1921") == "1921"
    assert parse_birth("1921-3") == "1921-03"
    assert parse_birth("03/1921") == "1921-03"
    assert parse_birth("12.03.1921") == "1921-03-12"
    assert parse_birth("1921-03-12") == "1921-03-12"
    assert parse_birth("") is None
    for bad in ("31.02.1921", "1921-13", "12 mars 1921", "21"):
        try:
            parse_birth(bad)
        except ValueError as exc:
            assert bad in str(exc)
        else:
            raise AssertionError(bad)


def test_every_row_becomes_a_person_or_is_reported_with_its_line(catalogue: Catalogue, tmp_path: Path) -> None:
    add_collections(catalogue)
    text = ("ID;Nom;Prénoms;Date of birth;Place of birth;Nationality;Transport;No\n"
            "1;Lévy;Abraham;12.03.1921;Warszawa;polonaise;XX;12\n"
            ";;;;;;;\n"  # a row of separators only: not a row
            "2;;Chaja;1930;;;XX;13\n"  # line 4: no surname
            "3;Lewin;Moszek;31.02.1899;;;XX;14\n"  # line 5: no such day
            "1;Lévy;Abram;1921;;;XX;12\n"  # line 6: the id again
            "a b;Cohen;Sara;1925;;;XX;15\n"  # line 7: not an id
            "4;Cohen;Sara;1925;;;XX;15;extra\n"  # line 8: a field too many
            "5;Kahn;Ruth;1911-07;Berlin;;XX;16\n")
    report = import_persons(catalogue, write(tmp_path, text))
    assert report.rows == 7 and report.people == 2
    lines = [e.split(":")[0] for e in report.errors]
    assert lines == ["4", "5", "6", "7", "8"], report.errors
    assert "no surname" in report.errors[0] and "31.02.1899" in report.errors[1] and "line 2" in report.errors[2]
    found = people(catalogue)
    assert set(found) == {"1", "5"}
    assert (found["1"].surname, found["1"].given_names, found["1"].birth_date, found["1"].birth_year) == (
        "Lévy", "Abraham", "1921-03-12", 1921)
    assert found["5"].birth_date == "1911-07" and found["5"].birth_place == "Berlin"


def test_a_windows_spreadsheet_with_commas_and_english_headers_reads_alike(catalogue: Catalogue,
                                                                          tmp_path: Path) -> None:
    text = "Person ID,Family name,First names,Born,Birthplace,Transport,Number on the list\r\n" \
           "7,Lévy,Abraham,1921,Liège,XX,12\r\n"
    report = import_persons(catalogue, write(tmp_path, text, encoding="cp1252"))
    assert report.errors == []
    assert people(catalogue)["7"].birth_place == "Liège" and people(catalogue)["7"].surname == "Lévy"


def test_a_file_without_an_id_or_surname_column_is_refused_whole(catalogue: Catalogue, tmp_path: Path) -> None:
    report = import_persons(catalogue, write(tmp_path, "number,given names\n1,Abraham\n"))
    assert report.people == 0 and report.imported is None
    assert report.errors[0].startswith("1: no column for id and surname")
    assert people(catalogue) == {}


def test_links_from_the_file_are_confirmed_and_a_rerun_replaces_them(catalogue: Catalogue, tmp_path: Path) -> None:
    add_collections(catalogue)
    first = import_persons(catalogue, write(tmp_path, PEOPLE_CSV))
    assert first.errors == [] and first.imported and first.imported.new == 6 and first.imported.links == 6
    assert ("1", LINE, "200,300,420,60", CONFIRMED) in links(catalogue)
    assert ("1", PORTRAIT, "", CONFIRMED) in links(catalogue)
    with catalogue.sessions() as session:
        xx = session.get(Transport, "XX")
        assert (xx.people, xx.portraits) == (5, 3)  # Kahn's portrait is a staff page: still a portrait
    # the same file again: nothing changes
    again = import_persons(catalogue, write(tmp_path, PEOPLE_CSV))
    assert again.imported and (again.imported.new, again.imported.updated, again.imported.unchanged) == (0, 0, 6)
    assert again.imported.links == 6 and len(links(catalogue)) == 6
    # person 1's line moves, their portrait goes; person 2 is renamed; person 6 is no longer in the file
    changed = PEOPLE_CSV.replace("portraits/levy-abraham;lists/list-20/p1;200,300,420,60",
                                 ";lists/list-20/p1;210,300,420,60").replace("2;Goldsztajn", "2;Goldsztajn-Wajs")
    changed = "\n".join(line for line in changed.splitlines() if not line.startswith("6;")) + "\n"
    third = import_persons(catalogue, write(tmp_path, changed))
    assert third.imported and third.imported.updated == 1 and third.imported.missing == ["6"]  # only 2 is renamed
    now = links(catalogue)
    assert ("1", LINE, "210,300,420,60", CONFIRMED) in now and ("1", LINE, "200,300,420,60", CONFIRMED) not in now
    assert not any(p == "1" and kind == PORTRAIT for p, kind, _, _ in now)
    assert "6" in people(catalogue), "kept without --remove-missing"
    assert people(catalogue)["2"].surname == "Goldsztajn-Wajs"
    fourth = import_persons(catalogue, write(tmp_path, changed), remove_missing=True)
    assert fourth.imported and fourth.imported.removed == 1 and "6" not in people(catalogue)


def test_a_link_to_a_page_the_catalogue_lacks_is_reported_and_the_person_kept(catalogue: Catalogue,
                                                                              tmp_path: Path) -> None:
    add_collections(catalogue)
    text = ("id,surname,given names,portrait,list page,line box\n"
            "1,Lévy,Abraham,portraits/nobody,lists/list-20/p1,1500,1100,420,60\n"
            "2,Cohen,Sara,portraits/cohen-sara|portraits/missing/p1,lists/list-20/p1,\"200,540,460,60\"\n"
            "3,Lewin,Moszek,,lists/list-20/p2,\n")
    report = import_persons(catalogue, write(tmp_path, text))
    # row 2's box has commas of its own: in quotes; row 1's is unquoted, so a field too many
    assert [e.split(":")[0] for e in report.errors] == ["2", "4"], report.errors
    assert "a list page needs its line box" in report.errors[1]
    assert report.imported is not None
    assert report.imported.warnings == ["3: no page portraits/missing/p1 in the catalogue: the portrait link of 2 "
                                        "is left out"]
    assert set(people(catalogue)) == {"2"}
    assert links(catalogue) == [("2", LINE, "200,540,460,60", CONFIRMED), ("2", PORTRAIT, "", CONFIRMED)]


def test_a_line_link_updates_the_lists_manifest_for_harvesters(catalogue: Catalogue, tmp_path: Path) -> None:
    add_collections(catalogue)
    with catalogue.sessions() as session:
        before = session.scalar(select(Collection.revision).where(Collection.id == "lists"))
    import_persons(catalogue, write(tmp_path, PEOPLE_CSV))
    with catalogue.sessions() as session:
        assert session.scalar(select(Collection.revision).where(Collection.id == "lists")) > before
        updates = session.execute(select(Activity.type, Activity.collection_id, Activity.document_ident)
                                  .where(Activity.collection_id == "lists")).all()
    assert ("Update", "lists", "list-20") in updates


def test_the_command_line_says_what_happened_and_exits_1_on_a_bad_row(tmp_path: Path) -> None:
    data = tmp_path / "data"
    csv = write(tmp_path, "id,surname,birth date\n1,Lévy,1921\n2,Cohen,someday\n")
    done = subprocess.run([sys.executable, "-m", "iiif_server.cli", "persons", "import", str(csv), "--data-dir",
                           str(data)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "people.csv:3: birth date 'someday' is not a date" in done.stderr
    assert "2 rows: 1 new, 0 updated, 0 unchanged, 1 refused" in done.stderr
