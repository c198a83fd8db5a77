"""Several `iiif-server ingest --join` processes share one run of a collection through PostgreSQL (issue 24): each
as if on a host of its own (its own data folder), with one catalogue and one image store (a folder, or an S3
bucket); every page is converted by one process and committed once, nothing is lost, the activity stream is in
order, and the run's report holds what every process did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from support import fresh_postgres, s3_settings_for

from iiif_server import config
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.models import Activity, Collection, Document, Image, IngestRun, IngestWork
from iiif_server.storage import ObjectTarget

DOCS, PAGES_EACH = 12, 3
PROCESSES = 3


def masters(src: Path) -> int:
    """DOCS documents of PAGES_EACH noisy pages (each takes a while to convert), and one broken master."""
    import pyvips

    for d in range(DOCS):
        (src / f"d{d:02}").mkdir(parents=True)
        for p in range(PAGES_EACH):
            noise = pyvips.Image.gaussnoise(1800, 1400, mean=128, sigma=40, seed=d * 10 + p).cast("uchar")
            noise.bandjoin([noise.flip("horizontal"), noise.flip("vertical")]).jpegsave(
                str(src / f"d{d:02}" / f"p{p}.jpg"), Q=90)
    (src / "d03" / "p9.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a JPEG at all" * 40)
    return DOCS * PAGES_EACH


def run_together(src: Path, envs: list[dict[str, str]]) -> list[subprocess.CompletedProcess[str]]:
    """The same command, started at once in every 'host'."""
    cmd = [sys.executable, "-m", "iiif_server.cli", "ingest", str(src), "--collection", "shared", "--join",
           "--workers", "1"]
    procs = [subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for env in envs]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def reports(data_dirs: list[Path]) -> list[dict]:  # type: ignore[type-arg]
    found = []
    for folder in data_dirs:
        (path,) = (folder / "reports").glob("ingest-*.json")
        found.append(json.loads(path.read_text()))
    return found


@pytest.mark.parametrize("storage", ["folder", "s3"])
def test_processes_on_several_hosts_share_one_run_and_commit_each_page_once(
        storage: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = fresh_postgres("to share an ingest run between processes")
    src = tmp_path / "masters"
    pages = masters(src)
    data_dirs = [tmp_path / f"host{n}" for n in range(PROCESSES)]
    if storage == "s3":
        weed = request.getfixturevalue("weed")
        settings = [s3_settings_for(weed, d, "shared-run", database=url) for d in data_dirs]
    else:
        settings = [config.Settings(data_dir=d, images=str(tmp_path / "images"), database=url, demo=False)
                    for d in data_dirs]
    done = run_together(src, [s.to_env() for s in settings])
    for proc in done:
        assert proc.returncode in (0, 1), proc.stderr  # 1: the broken master failed (in whichever process)
        assert "Traceback" not in proc.stderr, proc.stderr

    catalogue = Catalogue(url)
    try:
        with catalogue.sessions() as session:
            runs = session.scalars(select(IngestRun)).all()
            (leader,) = [r for r in runs if not (r.message or "").startswith("helped run")]
            assert leader.state == "finished"
            assert sorted(r.message for r in runs if r is not leader) == [f"helped run {leader.id}"] * (PROCESSES - 1)
            assert session.scalars(select(IngestWork)).all() == []  # the run's work rows went with it

            # every page once, in its document, in the folder's order; the counts kept agree
            images = session.execute(select(Document.ident, Image.ident, Image.position)
                                     .join(Image, Image.document_pk == Document.pk)
                                     .where(Document.collection_id == "shared")).all()
            assert sorted(images) == sorted((f"d{d:02}", f"p{p}", p) for d in range(DOCS) for p in range(PAGES_EACH))
            coll = session.get(Collection, "shared")
            assert coll is not None and (coll.document_count, coll.image_count) == (DOCS, pages)

            # the activity stream: ids in time order, the collection first and last, one Create per document
            acts = session.scalars(select(Activity).order_by(Activity.id)).all()
            assert [a.end_time for a in acts] == sorted(a.end_time for a in acts)
            assert (acts[0].type, acts[0].object_type) == ("Create", "Collection")
            assert (acts[-1].type, acts[-1].object_type) == ("Update", "Collection")
            per_document = sorted((a.document_ident, a.type) for a in acts if a.document_ident)
            assert per_document == [(f"d{d:02}", "Create") for d in range(DOCS)]
    finally:
        catalogue.engine.dispose()

    # each page converted by exactly one process; the leader's report holds them all, and the failure once
    by_run = {r["helped_run"] is None: r for r in reports(data_dirs)}
    lead = by_run[True]
    helpers = [r for r in reports(data_dirs) if r["helped_run"] == leader.id]
    assert len(helpers) == PROCESSES - 1
    own = [lead["converted"] - lead["converted_by_others"], *(h["converted"] for h in helpers)]
    assert sum(own) == pages and lead["converted"] == pages, own
    assert sum(1 for n in own if n) >= 2, f"the work was not shared: {own}"
    assert [f["path"] for f in lead["failures"]] == [str(src / "d03" / "p9.jpg")]

    # every copy is in the one store the processes share
    for d in range(DOCS):
        if storage == "s3":
            target = ObjectTarget(settings[0].image_url, settings[0], tmp_path / "staging")
            names = target.names(f"shared/d{d:02}/")
        else:
            names = set(os.listdir(tmp_path / "images" / "shared" / f"d{d:02}"))
        assert {n for n in names if n.endswith(".tif")} == {f"p{p}.tif" for p in range(PAGES_EACH)}, (d, names)


def test_a_second_process_without_join_is_refused_with_the_way_to_help(tmp_path: Path) -> None:
    """Without --join the second process refuses at once and says how to help instead."""
    url = fresh_postgres("to share an ingest run between processes")
    catalogue = Catalogue(url)
    catalogue.upgrade()
    src = tmp_path / "masters"
    (src / "a").mkdir(parents=True)
    import pyvips

    pyvips.Image.black(64, 64).jpegsave(str(src / "a" / "p1.jpg"))
    try:
        with catalogue.run_lock("shared"):  # another run holds the collection
            env = config.Settings(data_dir=tmp_path / "data", images=str(tmp_path / "images"), database=url,
                                  demo=False).to_env()
            done = subprocess.run([sys.executable, "-m", "iiif_server.cli", "ingest", str(src), "--collection",
                                   "shared"], env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    finally:
        catalogue.engine.dispose()
    assert done.returncode == 1
    assert "another ingest of collection 'shared' is running" in done.stderr
    assert "add --join to help it" in done.stderr


def test_stopping_the_leader_stops_the_run_and_a_rerun_finishes_it_with_each_page_once(tmp_path: Path) -> None:
    """The helpers take no more documents and commit those in hand; nothing is half committed, and the next run
    converts exactly what is left."""
    import signal
    import time

    url = fresh_postgres("to share an ingest run between processes")
    src = tmp_path / "masters"
    pages = masters(src)
    (src / "d03" / "p9.jpg").unlink()
    envs = [config.Settings(data_dir=tmp_path / f"host{n}", images=str(tmp_path / "images"), database=url,
                            demo=False).to_env() for n in range(PROCESSES)]
    cmd = [sys.executable, "-m", "iiif_server.cli", "ingest", str(src), "--collection", "shared", "--join",
           "--workers", "1"]
    procs = [subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for env in envs]
    catalogue = Catalogue(url)
    try:
        leader = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # the run is under way: some documents committed
            try:
                with catalogue.sessions() as session:
                    leader = session.scalars(select(IngestRun).where(IngestRun.state == "running")).first()
                    committed = session.scalar(select(func.count()).select_from(Image))
            except Exception:  # noqa: BLE001 - the schema is still being created
                time.sleep(0.2)
                continue
            if leader is not None and committed and committed >= PAGES_EACH:
                break
            time.sleep(0.1)
        assert leader is not None and leader.pid is not None
        os.kill(leader.pid, signal.SIGTERM)
        done = [proc.communicate(timeout=300) for proc in procs]
        codes = sorted(proc.returncode for proc in procs)
        assert 128 + signal.SIGTERM in codes, (codes, [err for _, err in done])
        for _, err in done:
            assert "Traceback" not in err, err

        with catalogue.sessions() as session:
            assert session.get(IngestRun, leader.id).state == "stopped"
            assert session.scalars(select(IngestWork)).all() == []
            first = session.execute(select(Document.ident, func.count(Image.pk)).join(
                Image, Image.document_pk == Document.pk).group_by(Document.ident)).all()
        assert all(n == PAGES_EACH for _, n in first), first  # a document is committed whole or not at all
        assert len(first) < DOCS, "the run ended before the stop: nothing to check"

        rerun = subprocess.run(cmd, env={**os.environ, **envs[0]}, capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr
        assert f"{pages - PAGES_EACH * len(first)} converted" in rerun.stderr, rerun.stderr
        with catalogue.sessions() as session:
            images = session.scalar(select(func.count()).select_from(Image))
            acts = session.scalars(select(Activity).order_by(Activity.id)).all()
        assert images == pages
        assert sorted(a.document_ident for a in acts if a.document_ident) == [f"d{d:02}" for d in range(DOCS)]
        assert [a.end_time for a in acts] == sorted(a.end_time for a in acts)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        catalogue.engine.dispose()
