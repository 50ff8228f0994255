"""How the API answers a service's refusal: services raise Django's ValidationError (a dict names its
fields, a plain message is about the whole request), and the one exception handler
(settings.REST_FRAMEWORK["EXCEPTION_HANDLER"]) answers it as a 400 in DRF's shape, as a serializer would.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler

from media_engine.errors import MediaError


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = ValidationError(_nest_keyed(exc, as_serializer_error(exc)))
    elif isinstance(exc, DjangoPermissionDenied) and exc.args:
        exc = PermissionDenied(str(exc))  # the refusal's own words (accounts.teams names team and role)
    return exception_handler(exc, context)


def _nest_keyed(error: DjangoValidationError, body: dict[str, Any]) -> dict[str, Any]:
    """Errors about keys of a JSON field (each with params `key` and `message`, as
    jobs.validation.check_extra raises them) nest under their key: {"extra": {"music": ["..."]}}."""
    for name, items in getattr(error, "error_dict", {}).items():
        if all(item.params and "key" in item.params for item in items):
            nested: dict[str, list[str]] = {}
            for item in items:
                nested.setdefault(item.params["key"], []).append(item.params["message"])
            body[name] = nested
    return body


@contextmanager
def errors_under(field: str, *, media_errors: bool = False) -> Iterator[None]:
    """A plain ValidationError raised in the block is about `field` (one with a dict already names its
    fields). With media_errors, so is a MediaError: the media engine could not read the uploaded file."""
    try:
        yield
    except DjangoValidationError as error:
        if hasattr(error, "error_dict"):
            raise
        raise DjangoValidationError({field: error.error_list}) from error
    except MediaError as error:
        if not media_errors:
            raise
        raise DjangoValidationError({field: [str(error)]}) from error
