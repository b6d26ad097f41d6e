from django.urls import re_path

from alerts import views

app_name = "alerts"

urlpatterns = [
    # A signed token is URL-safe base64 and colons; anything else is no link of ours (404).
    re_path(r"^ack/(?P<token>[A-Za-z0-9_:-]{1,500})$", views.acknowledge, name="acknowledge"),
]
