"""The end times of activities, as harvesters read them: never before the change can be seen.

A harvester of Change Discovery walks the stream back from its end and stops at the first activity whose
`endTime` is before its previous crawl (the spec's page algorithm, 3.5.2). An activity stamped when it was
recorded, early in its transaction, and committed later, could be seen for the first time by a crawl that
started after that stamp: the harvester would stop before it and miss the change. So every activity of a
transaction is stamped once more just before the commit, with a time no earlier than the commit: the next
whole second after now plus the time the transaction has taken so far (the stamping itself takes no longer
than the writing did) and half a second, and never before the stamp of the activity before it (so that end
times rise with ids, whichever process recorded them). The spec's MUST (the object is available at its
`endTime`) holds; its SHOULD (the stamp is before the activity is published) is missed by a second or so.

The recording transactions take turns (Catalogue.lock_activities): the activities with ids above the highest
id at that moment are this transaction's own.
"""

from __future__ import annotations

import datetime as dt
import math
import time

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from iiif_server.db.models import Activity

SLACK = 0.5  # seconds added for the commit itself

_MARK = "activities_from"


def mark(session: Session) -> None:
    """Once the transaction records activities alone: note where its ids begin, and when it began."""
    with session.no_autoflush:
        top = session.scalar(select(func.max(Activity.id))) or 0
    session.info[_MARK] = (session.get_transaction(), top, time.monotonic())


def stamp(session: Session) -> None:
    """Before the commit: the transaction's activities get their end time (see the module's text)."""
    found = session.info.pop(_MARK, None)
    if found is None or found[0] is not session.get_transaction():
        return
    _, top, began = found
    at = dt.datetime.fromtimestamp(math.ceil(time.time() + SLACK + (time.monotonic() - began)), dt.UTC)
    session.flush()
    # never before the activity recorded just before (a longer transaction may have stamped it further ahead):
    # the stream's end times then rise with its ids, whichever process recorded them
    previous = session.scalar(select(Activity.end_time).where(Activity.id == top)) if top else None
    if previous is not None:
        at = max(at, previous if previous.tzinfo else previous.replace(tzinfo=dt.UTC))
    session.execute(update(Activity).where(Activity.id > top).values(end_time=at)
                    .execution_options(synchronize_session=False))


def watch(sessions: sessionmaker[Session]) -> None:
    if not event.contains(sessions, "before_commit", stamp):
        event.listen(sessions, "before_commit", stamp)
