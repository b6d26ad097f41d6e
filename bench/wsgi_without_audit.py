"""The production WSGI app with the business audit rows switched off, for
bench/pay_and_convert.py only. Nothing else imports this module.

The switch is a patch of this process only: the four rows of a conversion (and the one of a
later payment) are written by one function each in payments.services, which the work looks up
at call time. The exactly-once frame, its failure rows and the rest of the request are untouched.
"""

# First the WSGI app, which sets Django up; the app's modules can only be imported after it.
from planbeta.wsgi import application  # noqa: I001
from payments import services


def _no_rows(*args: object, **kwargs: object) -> None:
    return None


services._audit_conversion = _no_rows
services._audit_payment = _no_rows

__all__ = ["application"]
