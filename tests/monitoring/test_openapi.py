import pytest

pytestmark = pytest.mark.django_db


def test_schema_describes_the_whole_api(founder_client):
    response = founder_client.get("/api/schema", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ["/api/me", "/api/system/health", "/api/system/audit-logs"]:
        assert path in paths
    params = {p["name"] for p in paths["/api/system/audit-logs"]["get"]["parameters"]}
    assert {"type", "limit", "after", "entityType", "entityId", "userId", "since"} <= params


def test_schema_needs_a_login(anon_client):
    assert anon_client.get("/api/schema").status_code == 401


def test_docs_page_loads_its_assets_from_our_own_static_files(anon_client, founder):
    anon_client.force_login(founder)
    response = anon_client.get("/api/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "//cdn" not in html and "unpkg" not in html and "jsdelivr" not in html
