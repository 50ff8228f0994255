"""The API's JSON parser: DRF's, reading through the one depth-checked JSON reader."""

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

from accounts.json_text import json_parse


class CheckedJSONParser(JSONParser):
    """Deep nesting is a 400 that says so, like any other unreadable body (never a RecursionError)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json_parse(
                stream.read().decode(encoding), parse_constant=strict_constant if self.strict else None
            )
        except ValueError as error:  # a body that is not text in its encoding too
            raise ParseError(f"JSON parse error - {error}") from error
