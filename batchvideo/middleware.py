"""A read whose database connection was dropped mid-request (a database restart or failover, an
operator's pg_terminate_backend) is answered again, once, on a new connection instead of failing."""

from django.db import InterfaceError, OperationalError, connection

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class ReadAgainMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if (
            not isinstance(exception, (OperationalError, InterfaceError))
            or request.method not in SAFE_METHODS
            or connection.in_atomic_block
            or getattr(request, "read_again", False)
        ):
            return None
        request.read_again = True
        connection.close()
        match = request.resolver_match
        return match.func(request, *match.args, **match.kwargs)
