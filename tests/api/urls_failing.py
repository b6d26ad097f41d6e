"""A URL conf for tests only: the real site plus a view outside DRF that fails under /api/."""

from django.urls import include, path

from planbeta.urls import handler400, handler403, handler404, handler500  # noqa: F401


def exploding_view(request):
    raise RuntimeError("a view that is not a DRF view broke")


urlpatterns = [
    path("api/test/plain-explode", exploding_view),
    path("", include("planbeta.urls")),
]
