from django.apps import AppConfig


class PlanbetaConfig(AppConfig):
    """The project itself, installed so that its management commands (the demo seed, which spans
    every app) and its OpenAPI extensions are found. It has no models and no migrations."""

    name = "planbeta"
    verbose_name = "Plan Beta"

    def ready(self) -> None:
        from planbeta import openapi  # noqa: F401  (registers the schema extensions)
