"""What operators and clients take away from rendered jobs: the text to paste into a publishing platform,
one row per job (JSON or CSV) and a zip of the files, all from each job's latest successful render.
The admin's export actions and the API's desc and export call these."""

import csv
import io
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from typing import IO, Any

from django.core.files.storage import default_storage
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils.text import slugify

from jobs.files import execution_urls
from jobs.models import NEW, Job, JobExecution

LINK_LABELS = {
    "video": "Video",
    "cover": "Cover",
    "srt": "Subtitles (SRT)",
    "ass": "Subtitles (ASS)",
    "narration": "Narration",
}
EXPORT_COLUMNS = (
    "id",
    "title",
    "publish_title",
    "description",
    "status",
    "video_url",
    "cover_url",
    "subtitles_url",
)
# A cell starting with one of these runs as a formula in a spreadsheet (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def job_description(*, job: Job) -> dict[str, Any]:
    """The publish title, description and signed links, and `text`: all three ready to paste."""
    urls = execution_urls(job.latest_success)
    # A fixed order (PostgreSQL's jsonb does not keep the stored one).
    links = {name: urls[name] for name in [*LINK_LABELS, *sorted(urls)] if name in urls}
    lines = [f"{LINK_LABELS.get(name, name)}: {url}" for name, url in links.items() if url]
    parts = (job.publish_title or job.title, job.description, "\n".join(lines))
    text = "\n\n".join(part for part in parts if part)
    return {
        "id": job.pk,
        "title": job.title,
        "publish_title": job.publish_title,
        "description": job.description,
        "links": links,
        "text": text,
    }


def export_rows(
    *, jobs: QuerySet[Job], limit: int | None = None, link: Callable[[str], str] | None = None
) -> list[dict[str, Any]]:
    """A row of EXPORT_COLUMNS per job (at most `limit`); `link` rewrites each signed link, e.g. to an
    absolute URL."""
    rows = []
    for job, execution in _with_latest_success(jobs.select_related("latest_execution"), limit=limit):
        urls = execution_urls(execution)
        if link is not None:
            urls = {name: link(url) for name, url in urls.items() if url}
        rows.append(
            {
                "id": job.pk,
                "title": job.title,
                "publish_title": job.publish_title,
                "description": job.description,
                "status": job.latest_execution.status if job.latest_execution else NEW,
                "video_url": urls.get("video", ""),
                "cover_url": urls.get("cover", ""),
                "subtitles_url": urls.get("srt", ""),
            }
        )
    return rows


def export_csv(*, rows: Iterable[dict[str, Any]]) -> str:
    table = ([row.get(column, "") for column in EXPORT_COLUMNS] for row in rows)
    return csv_text(lines=[EXPORT_COLUMNS, *table])


def csv_text(*, lines: Iterable[Iterable[Any]]) -> str:
    """CSV that spreadsheet programs open safely: a BOM so they read UTF-8 (Chinese titles), and every cell
    that would start a formula prefixed with ' so it stays text."""
    out = io.StringIO()
    out.write("\ufeff")
    csv.writer(out).writerows([_csv_cell(value) for value in line] for line in lines)
    return out.getvalue()


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def artifacts_zip(*, jobs: QuerySet[Job]) -> IO[bytes] | None:
    """The files of each job's latest successful render in a folder `<id>-<title>`, as a zip rewound to its
    start; None when no job has a successful render."""
    archive = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
    count = 0
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as bundle:
        for job, execution in _with_latest_success(jobs):
            if execution is None:
                continue
            folder = f"{job.pk}-{slugify(job.title, allow_unicode=True) or 'job'}"
            for name, key in execution.results.items():
                if not isinstance(key, str) or not default_storage.exists(key):
                    continue
                arcname = f"{folder}/{name}{os.path.splitext(key)[1]}"
                with default_storage.open(key, "rb") as source, bundle.open(arcname, "w") as target:
                    for chunk in iter(lambda: source.read(1024 * 1024), b""):
                        target.write(chunk)
            count += 1
    if not count:
        archive.close()
        return None
    archive.seek(0)
    return archive


def _with_latest_success(
    jobs: QuerySet[Job], *, limit: int | None = None
) -> list[tuple[Job, JobExecution | None]]:
    """Each job (at most `limit`) with its latest successful render (Job.latest_success), in two queries."""
    latest = JobExecution.objects.filter(job=OuterRef("pk")).successes().values("id")[:1]
    selected = list(jobs.annotate(success_id=Subquery(latest))[:limit])
    executions = JobExecution.objects.in_bulk([job.success_id for job in selected if job.success_id])
    return [(job, executions.get(job.success_id)) for job in selected]
