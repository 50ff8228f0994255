"""How a request names its team."""

from tests.api.conftest import client_for
from tests.factories import make_user


def test_a_team_parameter_that_is_no_slug_is_refused_with_its_reason_not_a_500(db):
    """Schemathesis sent `?team=%0B-3a%00b`: PostgreSQL refuses a NUL in a query, the API answered 500."""
    response = client_for(make_user()).get("/api/v1/accounts/", {"team": "\x0b-3a\x00b"})
    assert response.status_code == 403
    assert "is not a team" in response.json()["detail"]
