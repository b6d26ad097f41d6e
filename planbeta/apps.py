from django.apps import AppConfig


class PlanbetaConfig(AppConfig):
    """The project itself, installed only so that its management commands (the demo seed, which
    spans every app) are found. It has no models and no migrations."""

    name = "planbeta"
    verbose_name = "Plan Beta"
