"""Django's database sessions, except that a database outage is not blamed on the client.

Django's database backend turns any DatabaseError while saving an existing session into
UpdateError, which SessionMiddleware answers with 400 ("the session was deleted"). When the
database is down or stalled (core.database) the original error is raised instead, so the request
gets the 503 page and its DATABASE_ERROR row like any other database failure.
"""

from __future__ import annotations

from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

from core.database import database_unavailable


class SessionStore(DatabaseSessionStore):
    def save(self, must_create: bool = False) -> None:
        try:
            return super().save(must_create=must_create)
        except UpdateError as exc:
            cause = exc.__context__
            if cause is not None and database_unavailable(cause):
                raise cause from None
            raise
