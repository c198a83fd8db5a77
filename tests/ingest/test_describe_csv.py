"""`iiif-server collections describe FILE.csv`: collections described from a spreadsheet's CSV, every row
accounted for (described, unchanged or refused with its line), all or nothing, idempotent; the change
announced to harvesters once, and again for the manifests that show the collection's rights."""

from __future__ import annotations

from pathlib import Path

from bulk import fill
from click.testing import CliRunner
from sqlalchemy import select, update

from iiif_server import cli as cli_module
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Activity, Collection, Document

CC_BY = "http://creativecommons.org/licenses/by/4.0/"
IN_COPYRIGHT = "http://rightsstatements.org/vocab/InC/1.0/"


def describe(catalogue: Catalogue, tmp_path: Path, csv: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli_module.main, ["collections", "describe", str(csv), "--database", catalogue.url,
                                                  "--data-dir", str(tmp_path / "data")])
    return result.exit_code, result.stdout, result.stderr


def activities(catalogue: Catalogue) -> list[tuple[str, str, str, str | None, str]]:
    with catalogue.sessions() as session:
        return [tuple(r) for r in session.execute(select(  # type: ignore[misc]
            Activity.type, Activity.object_type, Activity.collection_id, Activity.document_ident, Activity.tier)
            .order_by(Activity.id)).all()]


def archive(catalogue: Catalogue) -> None:
    fill(catalogue, "letters", 3, 1, tier="reading-room")
    fill(catalogue, "maps", 4, 1)
    with catalogue.session() as session:  # one map has rights of its own: its manifest does not change
        session.execute(update(Document).where(Document.collection_id == "maps", Document.ident == "doc1")
                        .values(rights=IN_COPYRIGHT))


def test_a_spreadsheet_describes_collections_and_a_second_run_changes_nothing(catalogue: Catalogue,
                                                                             tmp_path: Path) -> None:
    archive(catalogue)
    csv = tmp_path / "collections.csv"  # as Excel writes it in Belgium: Windows-1252, semicolons, headers in capitals
    csv.write_bytes(
        "ID;Label;Summary;Description;Dates;Provenance;Rights;Required statement;Record;Creator\r\n"
        "letters;Lettres de la famille Lévy;Letters of one family;Forty letters written between Mechelen and "
        "Brussels.;1942-1944;Gift of the Lévy family, 1998;https://creativecommons.org/licenses/by/4.0/;"
        "Kazerne Dossin;KD_00012;Lévy family\r\n"
        "maps;Maps;;;1939;;https://creativecommons.org/licenses/by/4.0/;;;\r\n"
        ";;;;;;;;;\r\n".encode("cp1252"))
    rev = {c: catalogue.revision(c) for c in ("letters", "maps")}
    before = len(activities(catalogue))
    code, out, err = describe(catalogue, tmp_path, csv)
    assert code == 0, err
    assert f"{csv}:2: letters described: label, summary, description, dates, provenance, rights, required " \
           "statement, record, metadata" in out
    assert f"{csv}:3: maps described: label, dates, rights" in out
    assert "2 described, 0 unchanged, 0 refused" in err
    letters = catalogue.collection("letters")
    assert (letters.label, letters.summary, letters.dates, letters.provenance, letters.record) == (
        "Lettres de la famille Lévy", "Letters of one family", "1942-1944", "Gift of the Lévy family, 1998", "KD_00012")
    assert letters.description == "Forty letters written between Mechelen and Brussels."
    assert letters.rights == CC_BY  # http, as Presentation 3.0 wants it
    assert letters.metadata_pairs == [["Creator", "Lévy family"]]
    maps = catalogue.collection("maps")
    assert (maps.summary, maps.metadata_pairs, maps.rights) == (None, [], CC_BY)
    assert {c: catalogue.revision(c) for c in rev} == {c: r + 1 for c, r in rev.items()}
    # announced: each collection's Update; each manifest that shows the collection's rights (in the collection's
    # tier); the map with rights of its own is not
    new = activities(catalogue)[before:]
    assert ("Update", "Collection", "letters", None, "reading-room") in new
    assert ("Update", "Collection", "maps", None, "public") in new
    changed = sorted((c, d) for kind, what, c, d, _ in new if what == "Manifest" and d is not None)
    assert changed == [("letters", "doc0"), ("letters", "doc1"), ("letters", "doc2"),
                       ("maps", "doc0"), ("maps", "doc2"), ("maps", "doc3")]
    # again: nothing changes, nothing is announced
    after = len(activities(catalogue))
    code, out, err = describe(catalogue, tmp_path, csv)
    assert code == 0, err
    assert f"{csv}:2: letters unchanged" in out and f"{csv}:3: maps unchanged" in out
    assert "0 described, 2 unchanged, 0 refused" in err
    assert len(activities(catalogue)) == after
    assert {c: catalogue.revision(c) for c in rev} == {c: r + 1 for c, r in rev.items()}


def test_a_column_left_out_is_kept_and_an_empty_cell_clears(catalogue: Catalogue, tmp_path: Path) -> None:
    archive(catalogue)
    first = tmp_path / "first.csv"
    first.write_text("id,summary,dates,subject\nletters,Letters of one family,1942-1944,Deportation\n")
    assert describe(catalogue, tmp_path, first)[0] == 0
    second = tmp_path / "second.csv"
    second.write_text("id,summary\nletters,\n")  # no dates column: the dates stay; no metadata columns: pairs stay
    code, out, _ = describe(catalogue, tmp_path, second)
    assert code == 0 and f"{second}:2: letters described: summary" in out
    letters = catalogue.collection("letters")
    assert (letters.summary, letters.dates, letters.metadata_pairs) == (None, "1942-1944", [["subject", "Deportation"]])
    empty_label = tmp_path / "label.csv"
    empty_label.write_text("id,label\nletters,\n")  # a collection is never without a label: its id
    assert describe(catalogue, tmp_path, empty_label)[0] == 0
    assert catalogue.collection("letters").label == "letters"
    assert "unchanged" in describe(catalogue, tmp_path, empty_label)[1]


def test_every_bad_row_is_named_and_nothing_is_applied(catalogue: Catalogue, tmp_path: Path) -> None:
    archive(catalogue)
    fill(catalogue, "diaries", 1, 1)
    csv = tmp_path / "bad.csv"
    csv.write_text("id,summary,rights,dates\n"
                   "maps,Good row,,\n"
                   "nowhere,An unknown collection,,\n"
                   "letters,Bad rights,https://example.org/my-licence,\n"
                   "letters,Twice,,\n"
                   f"diaries,Long dates,,{'1' * 201}\n"
                   ",No id,,\n"
                   "maps,Too,many,fields,here\n", encoding="utf-8")
    with catalogue.sessions() as session:
        before = session.execute(select(Collection.id, Collection.summary, Collection.revision)).all()
    activity_count = len(activities(catalogue))
    code, out, err = describe(catalogue, tmp_path, csv)
    assert code == 2
    assert out == ""
    for line, what in ((3, "no collection 'nowhere' in the catalogue"),
                       (4, "not a Creative Commons or RightsStatements.org URI"), (5, "is already on line 4"),
                       (6, "dates is longer than 200 characters"), (7, "empty id"),
                       (8, "5 fields where the header names 4")):
        assert f"{csv}:{line}: " in err and what in err, (line, err)
    assert f"{csv}:2: " not in err
    assert "nothing was described: 6 row(s) refused, 1 good" in err
    with catalogue.sessions() as session:
        assert session.execute(select(Collection.id, Collection.summary, Collection.revision)).all() == before
    assert len(activities(catalogue)) == activity_count


def test_a_file_without_an_id_column_says_what_it_read(catalogue: Catalogue, tmp_path: Path) -> None:
    archive(catalogue)
    csv = tmp_path / "noid.csv"
    csv.write_bytes("Collection;Summary\r\nletters;Brieven\r\n".encode("cp1252"))
    code, _, err = describe(catalogue, tmp_path, csv)
    assert code == 2
    assert "no column is called 'id' (read as UTF-8 with semicolons between columns, the first line names " \
           "'Collection', 'Summary')" in err
