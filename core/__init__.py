"""The foundation every app builds on: error types, money, pagination, the read-only admin base,
the form-error helper and the database layer (the PostgreSQL backend with its deadline, which
errors mean "unavailable", the session store). It imports no app of this project, so any app may
import it."""
