"""The one error type of the media engine.

`permanent=True` means retrying cannot help (bad input, a corrupt file, an unknown
platform); `permanent=False` means a retry may succeed (a busy server, a network error).
"""


class MediaError(Exception):
    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent


class Cancelled(Exception):
    """Raised from a progress point when the caller asked the work to stop."""
