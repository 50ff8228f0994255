"""What the three kinds of queued work (render executions, publications, webhook deliveries) share.

Each kind keeps its own claim and sweep for now (jobs.render.queue, jobs.publishing.publications,
jobs.webhooks); the wait between tries is one rule for all of them.
"""


def backoff_s(base_s: float, tries: int, *, max_s: float | None = None) -> float:
    """The wait after try number `tries` (1 for the first) ended: `base_s`, then doubling each time,
    at most `max_s`."""
    delay = base_s * 2 ** max(0, tries - 1)
    return delay if max_s is None else min(delay, max_s)
