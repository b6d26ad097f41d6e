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


def test_anonymous_visitors_of_the_docs_page_are_sent_to_log_in_and_back(anon_client):
    response = anon_client.get("/api/docs")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/api/docs"


@pytest.mark.parametrize("persona_client", ["teacher", "marketing", "founder"], indirect=True)
def test_a_script_with_a_token_gets_the_docs_page_not_the_login_page(persona_client):
    assert persona_client.get("/api/docs").status_code == 200


def test_a_bad_token_on_the_docs_page_is_the_apis_401_not_a_redirect(anon_client):
    response = anon_client.get("/api/docs", HTTP_AUTHORIZATION="Bearer pb_not-a-token")

    assert response.status_code == 401
    assert "Location" not in response
