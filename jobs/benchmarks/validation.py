"""How long the job rules take on hostile content: 10,000 characters of punctuation or of symbols
against prose, one content check at a time and as a whole batch of JOBS_BATCH_MAX such rows checked
the way POST /api/v1/jobs/batch/ checks them (outside any transaction). The figures to watch: the
worst check stays near the prose one (the check is one pass over the text), and the batch in well
under a second (it once held a request 53 s inside its transaction)."""

import contextlib
import time
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ValidationError

from jobs import services
from jobs.validation import CONTENT_MAX, check_content

HOSTILE = {
    "prose": "The park is quiet in the morning, and the lake is still. ",
    "punctuation": "!?.,;:-…。，",
    "symbols": "#$%&*+=<>|~^",
    "one word in dots": "a" + "." * 99,
}


def _best_of(runs: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        with contextlib.suppress(ValidationError):  # refused is the expected outcome for most of these
            work()
        best = min(best, time.perf_counter() - started)
    return best


def validation_benchmark(*, runs: int = 5) -> dict:
    texts = {name: (unit * CONTENT_MAX)[:CONTENT_MAX] for name, unit in HOSTILE.items()}
    checks = {name: _best_of(runs, lambda text=text: check_content(text)) for name, text in texts.items()}
    rows = [
        {"title": f"row {number}", "content": texts["symbols"] if number % 2 else texts["punctuation"]}
        for number in range(settings.JOBS_BATCH_MAX)
    ]
    batch = _best_of(runs, lambda: services.job_check_many(user=None, team=None, rows=rows))
    return {"checks_s": checks, "batch_rows": len(rows), "batch_s": batch}


def format_validation_line(result: dict) -> str:
    checks = ", ".join(f"{name} {seconds * 1000:.1f} ms" for name, seconds in result["checks_s"].items())
    worst = max(result["checks_s"].values())
    return (
        f"content check of {CONTENT_MAX} characters: {checks}; worst {worst * 1000:.1f} ms; "
        f"a batch of {result['batch_rows']} hostile rows checked in {result['batch_s']:.3f} s"
    )
