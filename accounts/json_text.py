"""The one reader of JSON that clients send, in every app: the API's parser, imported files, an
imported row's `extra`, the admin's own JSON requests and its JSON form fields.

Python's json module parses nested arrays and objects by recursion: a few kilobytes of `[[[[...`
raise RecursionError, which no caller treats as bad input (a server error), and a value nested a few
hundred deep still recurses in everything that walks it later. Nesting is counted before parsing,
without recursion, and refused past JSON_MAX_DEPTH, far deeper than any value this project takes.
The refusal is a json.JSONDecodeError, so every caller that handles bad JSON handles it too.
"""

import json
import re
from typing import Any

JSON_MAX_DEPTH = 32
TOO_DEEP_MESSAGE = f"JSON is nested too deeply (at most {JSON_MAX_DEPTH} levels of arrays and objects)"
# A string (skipped whole, whatever brackets it holds) or one bracket.
_TOKENS = re.compile(r'"(?:[^"\\]+|\\.)*"|[\[\]{}]')


class JSONTooDeep(json.JSONDecodeError):
    def __init__(self, doc: str, pos: int) -> None:
        super().__init__(TOO_DEEP_MESSAGE, doc, pos)


def json_depth_check(text: str) -> None:
    """Raise JSONTooDeep when `text` opens more than JSON_MAX_DEPTH arrays and objects at once."""
    depth = 0
    for token in _TOKENS.finditer(text):
        bracket = token.group()
        if bracket in ("[", "{"):
            depth += 1
            if depth > JSON_MAX_DEPTH:
                raise JSONTooDeep(text, token.start())
        elif bracket in ("]", "}"):
            depth -= 1


class DepthCheckedDecoder(json.JSONDecoder):
    """json.JSONDecoder that refuses deep nesting before parsing (for `cls=` / `decoder=` arguments)."""

    def decode(self, s: str, *args: Any) -> Any:
        json_depth_check(s)
        return super().decode(s, *args)


def json_parse(text: str | bytes, **options: Any) -> Any:
    """json.loads for untrusted text; bad input raises json.JSONDecodeError (JSONTooDeep included)."""
    return json.loads(text, cls=DepthCheckedDecoder, **options)
