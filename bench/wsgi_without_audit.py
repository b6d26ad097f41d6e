"""The production WSGI app with the business audit rows switched off, for
bench/pay_and_convert.py only. Nothing else imports this module."""

from django.conf import settings

from planbeta.wsgi import application

settings.BENCH_WITHOUT_BUSINESS_AUDIT = True

__all__ = ["application"]
