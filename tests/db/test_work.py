"""The documents of a shared ingest run, claimed by the processes that share it (db/work.py, issue 24)."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, update

from iiif_server.db import runs, work
from iiif_server.db.catalogue import Catalogue
from iiif_server.db.ingest import PageSpec
from iiif_server.db.models import Activity, Image, IngestRun, IngestWork, now


def shared_run(catalogue: Catalogue, documents: int) -> str:
    catalogue.prepare_ingest("c", None, None, [], {})
    rid = runs.create(catalogue, "c", "/masters", "test")
    with catalogue.session() as session:
        session.execute(update(IngestRun).where(IngestRun.id == rid).values(state="running"))
    work.publish(catalogue, rid, {"quality": 88}, [(f"d{n}", f"d{n}", f"/masters/d{n}", 2) for n in range(documents)])
    return rid


def test_a_claim_whose_lease_ran_out_is_taken_over_and_its_first_holder_commits_nothing(catalogue: Catalogue) -> None:
    rid = shared_run(catalogue, 1)
    assert [i.document for i in work.claim(catalogue, rid, "a", 5)] == ["d0"]
    assert work.claim(catalogue, rid, "b", 5) == []  # held by a
    with catalogue.session() as session:  # a stops renewing (its host froze)
        session.execute(update(IngestWork).values(claimed_at=now() - dt.timedelta(seconds=work.LEASE_SECONDS + 1)))
    assert [i.document for i in work.claim(catalogue, rid, "b", 5)] == ["d0"]

    pages = [PageSpec("p1", 0, (10, 10, "sum"), ("/masters/d0/p1.tif", 0, 1, 1.0))]
    with pytest.raises(work.Lost):  # a wakes up and commits: refused, and nothing of it stays
        catalogue.commit_document("c", "d0", "d0", pages,
                                  mark=lambda s: work.done(s, rid, 0, "a", {"converted": 1}))
    with catalogue.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Image)) == 0
        assert session.scalars(select(Activity.document_ident).where(Activity.document_ident.is_not(None))).all() == []
    assert work.open_work(catalogue, rid)

    catalogue.commit_document("c", "d0", "d0", pages, mark=lambda s: work.done(s, rid, 0, "b", {"converted": 1}))
    with catalogue.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Image)) == 1
        assert session.scalars(select(Activity.document_ident).where(Activity.document_ident.is_not(None))).all() \
            == ["d0"]
    assert not work.open_work(catalogue, rid)
    assert list(work.outcomes(catalogue, rid, "a")) == [{"converted": 1}]
    work.forget(catalogue, rid)
    with catalogue.sessions() as session:
        assert session.scalars(select(IngestWork)).all() == []


def test_claims_at_once_never_wait_for_each_other_nor_take_the_same_document(catalogue: Catalogue) -> None:
    if catalogue.engine.dialect.name != "postgresql":
        pytest.skip("several processes share a run on PostgreSQL only (SQLite: one process, refused with a message)")
    rid = shared_run(catalogue, 40)
    with catalogue.session() as held:  # another process is in the middle of its claim: rows 0 and 1 locked
        assert [r.seq for r in held.scalars(select(IngestWork).order_by(IngestWork.seq).limit(2)
                                            .with_for_update())] == [0, 1]
        assert [i.seq for i in work.claim(catalogue, rid, "b", 3)] == [2, 3, 4]  # skipped, not waited for
    with ThreadPoolExecutor(4) as pool:
        taken = list(pool.map(lambda me: [i.seq for _ in range(10) for i in work.claim(catalogue, rid, me, 1)],
                              ["p", "q", "r", "s"]))
    every = sorted(seq for mine in taken for seq in mine)
    assert every == sorted(set(every)) and set(every) == set(range(40)) - {2, 3, 4}


def test_the_run_lock_is_held_by_an_idle_session_not_an_open_transaction(catalogue: Catalogue) -> None:
    """A run holds its collection for days: an open transaction would hold back vacuum, and a server's
    idle_in_transaction_session_timeout would end it, and the lock with it."""
    if catalogue.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's run lock is a lock file")
    from sqlalchemy import text

    from iiif_server.errors import Busy

    with catalogue.run_lock("c"):
        with catalogue.engine.connect() as conn:
            states = conn.execute(text("SELECT state FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                                       "AND datname = current_database()")).scalars().all()
            assert "idle in transaction" not in states and "idle" in states, states
        with pytest.raises(Busy):
            with catalogue.run_lock("c"):
                pass
    with catalogue.run_lock("c"):  # released
        pass


def test_a_helper_whose_heartbeat_stopped_is_swept_as_interrupted(catalogue: Catalogue) -> None:
    rid = shared_run(catalogue, 1)
    gone, alive = runs.create(catalogue, "c", "/masters", "test"), runs.create(catalogue, "c", "/masters", "test")
    runs.helping(catalogue, gone, rid)
    runs.helping(catalogue, alive, rid)
    with catalogue.session() as session:  # killed with -9 a while ago: no heartbeat since
        session.execute(update(IngestRun).where(IngestRun.id == gone).values(
            heartbeat=now() - dt.timedelta(seconds=runs.STALE_SECONDS + 5)))
    runs.sweep(catalogue)
    assert runs.get(catalogue, gone).state == "interrupted"
    assert runs.get(catalogue, alive).state == "helping"
    assert runs.get(catalogue, rid).state == "running"  # the leader keeps its lock-based test
