"""The foundation every app builds on: error types, money, pagination, the read-only admin base and
the form-error helper. It imports no app of this project, so any app may import it."""
