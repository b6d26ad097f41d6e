from django.urls import path

from monitoring import views

app_name = "monitoring"

urlpatterns = [
    path("activity", views.activity_dashboard, name="activity"),
    path("activity/events", views.activity_events, name="activity-events"),
]
