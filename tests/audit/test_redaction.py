import pytest

from audit.redaction import MAX_DEPTH, MAX_ITEMS, REDACTED, redact


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "apiKey",
        "API_KEY",
        "api-key",
        "Api Key",
        "x-api-key",
        "Authorization",
        "authToken",
        "refresh_token",
        "clientSecret",
        "SENTRY_DSN",
        "dsn",
        "Cookie",
        "csrfmiddlewaretoken",
    ],
)
def test_secret_looking_keys_are_redacted_in_any_spelling(key):
    assert redact({key: "s3cr3t"}) == {key: REDACTED}


@pytest.mark.parametrize("key", ["amount", "invoiceNumber", "idempotencyKey", "leadName", "email"])
def test_ordinary_keys_are_kept(key):
    assert redact({key: "v"}) == {key: "v"}


def test_secrets_are_redacted_at_any_depth_in_lists_and_dicts():
    value = {"a": [{"b": {"password": "p", "ok": 1}}, ["x", {"Token": "t"}]]}
    assert redact(value) == {
        "a": [{"b": {"password": REDACTED, "ok": 1}}, ["x", {"Token": REDACTED}]]
    }


def test_depth_is_bounded():
    deep: dict = {}
    node = deep
    for _ in range(MAX_DEPTH + 3):
        node["n"] = {}
        node = node["n"]
    out = redact(deep)
    for _ in range(MAX_DEPTH - 1):
        out = out["n"]
    assert out == {"n": "[TRUNCATED]"}


def test_size_is_bounded():
    out = redact({"items": list(range(MAX_ITEMS + 5)), "text": "x" * 5000})
    assert len(out["items"]) == MAX_ITEMS + 1
    assert out["items"][-1] == "… 5 more items"
    assert len(out["text"]) == 2001


def test_values_that_are_not_json_become_strings():
    from decimal import Decimal

    assert redact({"amount": Decimal("134.00")}) == {"amount": "134.00"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "connect to postgres://app:s3cr3t@db:5432/x failed",
            "connect to postgres://[REDACTED]@db:5432/x failed",
        ),
        ("bad password=hunter2 given", "bad password=[REDACTED] given"),
        ("{'api_key': 'abc123', 'n': 1}", "{'api_key': '[REDACTED]', 'n': 1}"),
        ("Authorization: Bearer pb_xyz", "Authorization: [REDACTED]"),
        ("amount 134.00 refused", "amount 134.00 refused"),
    ],
)
def test_credentials_in_free_text_are_masked(text, expected):
    from audit.redaction import redact_text

    assert redact_text(text) == expected
