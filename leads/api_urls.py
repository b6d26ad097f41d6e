from django.urls import path

from leads import apis

urlpatterns = [
    path("leads", apis.LeadCollectionApi.as_view(), name="api-leads"),
    path("leads/<int:lead_id>", apis.LeadDetailApi.as_view(), name="api-lead"),
]
