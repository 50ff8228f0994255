"""OpenAPI documentation shared by the API views: one example per operation."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong.")


def detail_response(description: str, message: str) -> OpenApiResponse:
    return OpenApiResponse(
        response=DetailSerializer,
        description=description,
        examples=[
            OpenApiExample(description, value={"detail": message}, response_only=True),
        ],
    )


ERROR_401 = detail_response("Not logged in", "Authentication credentials were not provided.")
ERROR_403 = detail_response(
    "A shared preset, or a role you lack", "Shared presets can only be changed by a superuser."
)
ERROR_404 = detail_response("Not found (or someone else's)", "No Job matches the given query.")
ERROR_409 = detail_response("Still in use", "Still used by job 12; change or delete those first.")


def validation_error(example: dict[str, Any]) -> OpenApiResponse:
    return OpenApiResponse(
        response=OpenApiTypes.OBJECT,
        description="Invalid input: messages per field.",
        examples=[OpenApiExample("Invalid input", value=example, response_only=True, status_codes=["400"])],
    )


def response_example(name: str, value: Any, status: str = "200") -> OpenApiExample:
    return OpenApiExample(name, value=value, response_only=True, status_codes=[status])


def request_example(name: str, value: Any) -> OpenApiExample:
    return OpenApiExample(name, value=value, request_only=True)


def owned_crud_docs(
    *,
    noun: str,
    plural: str,
    serializer,
    example: dict[str, Any],
    write_example: dict[str, Any],
    invalid_example: dict[str, Any],
    tag: str,
    documented_elsewhere: tuple[str, ...] = (),
):
    """extend_schema_view for a ModelViewSet over an Owned model."""
    shown = response_example(noun.capitalize(), example)
    created = response_example(f"Created {noun}", example, "201")
    write = request_example(f"A {noun}", write_example)
    invalid = validation_error(invalid_example)
    operations = dict(
        list=extend_schema(
            summary=f"List {plural}",
            tags=[tag],
            examples=[shown],
            description=f"Your team's {plural} and the shared presets (superusers: all), paged.",
        ),
        retrieve=extend_schema(
            summary=f"Get a {noun}", tags=[tag], examples=[shown], responses={200: serializer, 404: ERROR_404}
        ),
        create=extend_schema(
            summary=f"Create a {noun}",
            tags=[tag],
            examples=[write, created],
            description=f"The new {noun} belongs to your current team (X-Team); you are its creator.",
            responses={201: serializer, 400: invalid, 401: ERROR_401},
        ),
        update=extend_schema(
            summary=f"Replace a {noun}",
            tags=[tag],
            examples=[write, shown],
            responses={200: serializer, 400: invalid, 403: ERROR_403, 404: ERROR_404},
        ),
        partial_update=extend_schema(
            summary=f"Change a {noun}",
            tags=[tag],
            examples=[write, shown],
            responses={200: serializer, 400: invalid, 403: ERROR_403, 404: ERROR_404},
        ),
        destroy=extend_schema(
            summary=f"Delete a {noun}",
            tags=[tag],
            responses={204: None, 403: ERROR_403, 404: ERROR_404, 409: ERROR_409},
        ),
    )
    return extend_schema_view(
        **{name: schema for name, schema in operations.items() if name not in documented_elsewhere}
    )


# Requests that work before (or without) a team: logging in and registering.
TEAMLESS_PATHS = ("/api/v1/auth/register/", "/api/v1/auth/token/")
TEAM_PARAMETERS = [
    {
        "in": "header",
        "name": "X-Team",
        "required": False,
        "schema": {"type": "string"},
        "description": "The slug of the team the request works in (GET /api/v1/teams/ lists yours). Without "
        "it (or the team parameter): your personal team, else your first. A team you are not a member of: 403.",
    },
    {
        "in": "query",
        "name": "team",
        "required": False,
        "schema": {"type": "string"},
        "description": "The same as the X-Team header, for clients that cannot set headers.",
    },
]


def team_parameters(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every operation documents the X-Team header and the team
    parameter (accounts.teams.current_team reads them)."""
    for path, operations in result.get("paths", {}).items():
        if path in TEAMLESS_PATHS:
            continue
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            parameters = operation.setdefault("parameters", [])
            named = {(parameter.get("in"), parameter.get("name")) for parameter in parameters}
            parameters += [p for p in TEAM_PARAMETERS if (p["in"], p["name"]) not in named]
    return result
