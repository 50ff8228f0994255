"""The one error type of the media engine, and the one way to retry a call that raises it.

`permanent=True` means retrying cannot help (bad input, a corrupt file, an unknown
platform); `permanent=False` means a retry may succeed (a busy server, a network error).
"""

import time
from collections.abc import Callable
from typing import TypeVar

import tenacity

T = TypeVar("T")


class MediaError(Exception):
    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent


class Cancelled(Exception):
    """Raised from a progress point when the caller asked the work to stop."""


def is_transient(error: BaseException) -> bool:
    return isinstance(error, MediaError) and not error.permanent


def with_retries(
    action: Callable[[], T],
    *,
    attempts: int,
    backoff_s: float,
    service: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `action`; a transient MediaError is retried `backoff_s` later, doubling, `attempts`
    times in all. A permanent one is raised at once; the last transient one is raised naming
    the attempts."""
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        stop=tenacity.stop_after_attempt(max(1, attempts)),
        wait=tenacity.wait_exponential(multiplier=backoff_s, min=0),
        sleep=sleep,
    )
    try:
        return retrying(action)
    except tenacity.RetryError as gave_up:
        error = gave_up.last_attempt.exception()
        raise MediaError(
            f"{service} failed after {max(1, attempts)} attempt(s): {error}", permanent=False
        ) from error
