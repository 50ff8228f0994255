"""Publishing a job's latest successful render to its Account's YouTube channel.

`publication_request` checks what is asked (admin, API and command alike) and queues a Publication;
a worker runs it (`publication_run`, from the django-q2 task `jobs.tasks.run_publication`). A run is
idempotent: it claims the row, then does only what is missing (upload, resumed from the byte YouTube
has; thumbnail; caption track), recording each part as it is done.

Quota: every call costs units of the Google project's daily budget (jobs.publishing.youtube.QUOTA_COSTS), and
a team may spend YOUTUBE_TEAM_QUOTA_SHARE of it. A run reserves what its missing parts cost, from its
team's part and from the project's, before it starts; what does not fit today waits (WAITING, with
scheduled_for) for the next quota day, which starts at midnight Pacific time, without touching other
teams' parts. A quota answer from YouTube does the same; a rate limit or a 5xx backs off and reschedules. A revoked grant fails with the
words that tell the operator to connect the channel again.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from accounts import channels, teams
from accounts.models import Account, Role
from jobs.files import fetch
from jobs.footage import stock
from jobs.models import Job, Privacy, Publication, PublicationStatus
from jobs.publishing.quota import (
    QUOTA_TIMEZONE,
    next_quota_day_start,
    quota_exhaust,
    quota_reserve,
    quota_shortfall,
)
from jobs.publishing.youtube import (
    QUOTA_COSTS,
    YouTubeError,
    insert_caption,
    set_thumbnail,
    upload_video,
    watch_url,
    youtube_client,
    youtube_error,
)
from jobs.webhooks import events
from jobs.workitems import WorkKind, backoff_s

logger = logging.getLogger(__name__)

PUBLISH_TASK = "jobs.tasks.run_publication"
# A RUNNING publication whose worker has not written for this long is taken over (a chunk writes progress).
STALE_AFTER = timedelta(minutes=15)
# A due publication this quiet gets its task queued again (a duplicate task finds it claimed: no-op).
WAKE_QUIET_AFTER = timedelta(minutes=10)
TITLE_MAX = 100
DESCRIPTION_MAX_BYTES = 5000
TAGS_MAX_CHARS = 500


@dataclass
class PublishOptions:
    """What an operator may choose; everything else comes from the job and its render."""

    privacy: str = ""  # empty: YOUTUBE_DEFAULT_PRIVACY (private when publish_at is set)
    publish_at: datetime | None = None
    tags: list[str] = field(default_factory=list)
    category_id: str = ""  # empty: YOUTUBE_DEFAULT_CATEGORY
    force: bool = False


def publication_cost(publication: Publication) -> int:
    """The units the publication's missing parts cost."""
    results = publication.execution.results
    cost = 0 if publication.video_id else QUOTA_COSTS["videos.insert"]
    if results.get("cover") and not publication.thumbnail_done:
        cost += QUOTA_COSTS["thumbnails.set"]
    if results.get("srt") and not publication.captions_done:
        cost += QUOTA_COSTS["captions.insert"]
    return cost


# ---------------------------------------------------------------- asking


def _with_credits(description: str, job: Job) -> str:
    """The job's description and, below it, a credit line for each clip the video shows whose licence
    asks for or names one (stock.clip_credit)."""
    credits = list(
        dict.fromkeys(
            credit
            for split_row in job.splits.select_related("clip").order_by("index")
            if split_row.clip and (credit := stock.clip_credit(split_row.clip))
        )
    )
    if not credits:
        return description
    return "\n\n".join(part for part in (description, "Credits:\n" + "\n".join(credits)) if part)


def publish_options_check(*, job: Job, options: PublishOptions) -> dict:
    """The publication's fields from the job and the options, or a ValidationError naming the problem."""
    errors: dict[str, list[str]] = {}
    title = (job.publish_title or job.title).strip()
    if len(title) > TITLE_MAX:
        errors.setdefault("publish_title", []).append(
            f"YouTube titles have at most {TITLE_MAX} characters; this one has {len(title)}."
        )
    if "<" in title or ">" in title:
        errors.setdefault("publish_title", []).append("YouTube titles may not contain < or >.")
    description = _with_credits(job.description.strip(), job)
    if len(description.encode()) > DESCRIPTION_MAX_BYTES or "<" in description or ">" in description:
        errors.setdefault("description", []).append(
            f"YouTube descriptions have at most {DESCRIPTION_MAX_BYTES} bytes and no < or >."
        )
    tags = [str(tag).strip() for tag in options.tags if str(tag).strip()]
    if sum(len(tag) + (2 if " " in tag else 0) for tag in tags) + max(0, len(tags) - 1) > TAGS_MAX_CHARS:
        errors.setdefault("tags", []).append(
            f"YouTube allows at most {TAGS_MAX_CHARS} characters of tags in all."
        )
    if any("<" in tag or ">" in tag or "," in tag for tag in tags):
        errors.setdefault("tags", []).append("A tag may not contain <, > or a comma.")
    category = options.category_id or settings.YOUTUBE_DEFAULT_CATEGORY
    if not category.isascii() or not category.isdigit() or len(category) > 8:
        errors.setdefault("category_id", []).append(
            f"A YouTube category is a number (e.g. 22), not {category!r}."
        )
    privacy = options.privacy or (Privacy.PRIVATE if options.publish_at else settings.YOUTUBE_DEFAULT_PRIVACY)
    if privacy not in Privacy.values:
        errors.setdefault("privacy", []).append(f"Choose private, unlisted or public, not {privacy!r}.")
    if options.publish_at is not None:
        if privacy != Privacy.PRIVATE:
            errors.setdefault("publish_at", []).append(
                "A scheduled video stays private until publish_at, when YouTube makes it public: leave privacy "
                "empty or private."
            )
        if options.publish_at <= timezone.now():
            errors.setdefault("publish_at", []).append("publish_at must be in the future.")
    if errors:
        raise ValidationError(errors)
    return {
        "title": title,
        "description": description,
        "tags": tags,
        "category_id": category,
        "privacy": privacy,
        "publish_at": options.publish_at,
        "language": job.language.code if job.language else "",
    }


def publication_check_allowed(*, job: Job, account: Account, user) -> None:
    """Publishing needs the role publisher in the job's team, to a channel of that team (a shared
    channel: superusers only)."""
    if job.team_id is not None:
        teams.require_role(user, job.team, Role.PUBLISHER)
    if not channels.channel_can_publish(account, user, team=job.team):
        if account.team_id is None:
            raise PermissionDenied(f"Only a superuser may publish to the shared channel {account.username}.")
        raise ValidationError(f"Account {account.pk} does not exist or is not a channel of this job's team.")


def publication_request(*, job: Job, user, options: PublishOptions | None = None) -> Publication:
    """Queue the publication of the job's latest successful render to the job's channel.

    Publishing a render again is refused unless forced; a failed publication of it is retried (it goes
    on from what it had done)."""
    options = options or PublishOptions()
    if job.deleted_at is not None:
        raise ValidationError("This job is deleted; restore it before publishing.")
    account = job.account
    if account is None:
        raise ValidationError("This job has no account: choose the channel to publish to.")
    if user is not None:  # None: a command, on the host
        publication_check_allowed(job=job, account=account, user=user)
    execution = job.latest_success
    if execution is None or not execution.results.get("video"):
        raise ValidationError("This job has no successful render to publish; render it first.")
    fields = publish_options_check(job=job, options=options)
    channels.channel_credentials(account)  # connected, decryptable: refuse now rather than on the worker
    with transaction.atomic():
        earlier = execution.publications.filter(forced=False).select_for_update().first()
        if earlier is not None and not options.force:
            if earlier.status != PublicationStatus.FAILED:
                raise ValidationError(
                    f"Render {execution.pk} of this job is already published or being published (publication "
                    f"{earlier.pk}, {earlier.status}); publish again with force to upload another copy."
                )
            return _retry(earlier, fields=fields)
        try:
            with transaction.atomic():
                publication = Publication.objects.create(
                    job=job,
                    execution=execution,
                    account=account,
                    forced=earlier is not None,
                    requested_by=user if user is not None and user.is_authenticated else None,
                    detail="Waiting for a worker",
                    **fields,
                )
        except IntegrityError as error:  # another request published this render a moment ago
            raise ValidationError(f"Render {execution.pk} of this job is already being published.") from error
        transaction.on_commit(lambda: PUBLICATIONS.wake(publication.pk))
    return publication


def _retry(publication: Publication, *, fields: dict) -> Publication:
    """Queue a failed publication again with today's options; the parts it finished stay done."""
    if not publication.video_id:  # an uploaded video keeps what it was uploaded with
        for name, value in fields.items():
            setattr(publication, name, value)
    publication.status, publication.error, publication.scheduled_for = PublicationStatus.QUEUED, "", None
    publication.attempts, publication.detail = 0, "Waiting for a worker (retry)"
    publication.save()
    transaction.on_commit(lambda: PUBLICATIONS.wake(publication.pk))
    return publication


def publications_request(
    *, jobs: QuerySet[Job], user, options: PublishOptions | None = None
) -> tuple[list[Publication], list[str]]:
    """Publish each job; returns the publications queued and, per refused job, why."""
    queued, refused = [], []
    for job in jobs.select_related("account", "language"):
        try:
            queued.append(publication_request(job=job, user=user, options=options))
        except ValidationError as error:
            refused.append(f"{job.title}: {'; '.join(error.messages)}")
        except PermissionDenied as error:
            refused.append(f"{job.title}: {error}")
    return queued, refused


# ---------------------------------------------------------------- running


def _due() -> Q:
    return Q(status__in=[PublicationStatus.QUEUED, PublicationStatus.WAITING]) & (
        Q(scheduled_for__isnull=True) | Q(scheduled_for__lte=timezone.now())
    )


def _stale() -> Q:
    """RUNNING with no word from its worker for STALE_AFTER (a chunk writes progress)."""
    return Q(status=PublicationStatus.RUNNING, updated_at__lt=timezone.now() - STALE_AFTER)


PUBLICATIONS = WorkKind(
    name="publication",
    model=Publication,
    task=PUBLISH_TASK,
    cluster_setting="IO_CLUSTER",
    due=_due,
    stale=_stale,
)


def publication_claim(*, publication_id: int) -> Publication | None:
    """Take the publication for this worker if it is due (or its worker went silent); None otherwise."""
    claimed = PUBLICATIONS.claim(
        publication_id,
        status=PublicationStatus.RUNNING,
        attempts=F("attempts") + 1,
        updated_at=timezone.now(),
        detail="Publishing",
    )
    if not claimed:
        return None
    return Publication.objects.select_related("execution", "account", "job__team").get(pk=publication_id)


def _save(publication: Publication, **fields) -> None:
    for name, value in fields.items():
        setattr(publication, name, value)
    publication.save(update_fields=[*fields, "updated_at"])


def publication_run(*, publication_id: int) -> Publication | None:
    """One attempt at a publication: does what is missing, or reschedules, or fails with the reason."""
    publication = publication_claim(publication_id=publication_id)
    if publication is None:
        return None
    try:
        _publish_missing_parts(publication)
    except YouTubeError as error:
        _after_error(publication, error)
    except ValidationError as error:
        _fail(publication, "; ".join(error.messages))
    except FileNotFoundError as error:
        _fail(
            publication,
            f"The render's file {error.filename or error} is no longer in storage; render the job "
            "again and publish that render.",
        )
    except Exception as error:  # a bug or an outage no rule knows: retried like a transient error, logged
        logger.exception("publication %s", publication.pk)
        _after_error(publication, youtube_error(error))
    publication.refresh_from_db()
    return publication


def _publish_missing_parts(publication: Publication) -> None:
    credentials = channels.channel_credentials(publication.account)
    cost, team = publication_cost(publication), publication.job.team
    if cost and not quota_reserve(units=cost, team=team):
        _wait_for_quota(publication, quota_shortfall(units=cost, team=team))
        return
    results = publication.execution.results
    client = youtube_client(credentials)
    if not publication.video_id:
        _save(publication, detail="Uploading the video")
        video = upload_video(
            client,
            path=fetch(results["video"]),
            body=_video_body(publication),
            upload_uri=publication.upload_uri,
            on_session=lambda uri, sent: _save(publication, upload_uri=uri, uploaded_bytes=sent),
        )
        _save(publication, video_id=video["id"], url=watch_url(video["id"]), upload_uri="")
    if results.get("cover") and not publication.thumbnail_done:
        _save(publication, detail="Setting the thumbnail")
        set_thumbnail(client, video_id=publication.video_id, path=fetch(results["cover"]))
        _save(publication, thumbnail_done=True)
    if results.get("srt") and not publication.captions_done:
        _save(publication, detail="Adding the caption track")
        insert_caption(
            client,
            video_id=publication.video_id,
            path=fetch(results["srt"]),
            language=publication.language or "und",
            name=publication.language or "Subtitles",
        )
        _save(publication, captions_done=True)
    when = (
        f"; YouTube makes it public at {publication.publish_at:%Y-%m-%d %H:%M} UTC"
        if publication.publish_at
        else ""
    )
    with transaction.atomic():  # the publish.done event exists exactly when the publication is done
        _save(
            publication,
            status=PublicationStatus.PUBLISHED,
            published_at=timezone.now(),
            error="",
            scheduled_for=None,
            detail=f"Published as {publication.privacy}: {publication.url}{when}"[:500],
        )
        events.publication_event_record(publication=publication)


def _video_body(publication: Publication) -> dict:
    snippet = {
        "title": publication.title,
        "description": publication.description,
        "tags": publication.tags,
        "categoryId": publication.category_id,
    }
    if publication.language:
        snippet.update(defaultLanguage=publication.language, defaultAudioLanguage=publication.language)
    status = {"privacyStatus": publication.privacy, "selfDeclaredMadeForKids": False}
    if publication.publish_at:
        status["publishAt"] = publication.publish_at.astimezone(ZoneInfo("UTC")).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    return {"snippet": snippet, "status": status}


def _wait_for_quota(publication: Publication, why: str) -> None:
    when = next_quota_day_start()
    local = timezone.localtime(when, QUOTA_TIMEZONE)
    detail = f"Scheduled for the next YouTube quota day ({local:%Y-%m-%d %H:%M %Z}, {when:%H:%M} UTC): {why}"
    # A quota wait is not a failed attempt: it does not count towards YOUTUBE_MAX_ATTEMPTS.
    _save(
        publication,
        status=PublicationStatus.WAITING,
        scheduled_for=when,
        detail=detail[:500],
        attempts=max(0, publication.attempts - 1),
    )
    PUBLICATIONS.wake(publication.pk, when=when)


def _after_error(publication: Publication, error: YouTubeError) -> None:
    if error.kind == "quota":
        quota_exhaust()
        _wait_for_quota(publication, str(error))
    elif error.kind == "retry" and publication.attempts < settings.YOUTUBE_MAX_ATTEMPTS:
        delay = backoff_s(settings.YOUTUBE_RETRY_BACKOFF_S, publication.attempts, max_s=3600.0)
        when = timezone.now() + timedelta(seconds=delay)
        _save(
            publication,
            status=PublicationStatus.WAITING,
            scheduled_for=when,
            error=str(error),
            detail=f"Attempt {publication.attempts} of {settings.YOUTUBE_MAX_ATTEMPTS} ended ({error}); "
            f"trying again at {when:%Y-%m-%d %H:%M} UTC"[:500],
        )
        PUBLICATIONS.wake(publication.pk, when=when)
    elif error.kind == "retry":
        _fail(publication, f"Gave up after {publication.attempts} attempts: {error}")
    else:
        if error.kind == "revoked":
            channels.channel_mark_revoked(account=publication.account)
        _fail(publication, str(error))


def _fail(publication: Publication, message: str) -> None:
    done = (
        f" The video is uploaded ({publication.url}); publishing it again finishes the rest."
        if (publication.video_id)
        else ""
    )
    with transaction.atomic():
        _save(
            publication,
            status=PublicationStatus.FAILED,
            error=message + done,
            detail=f"Failed: {message}"[:500],
            scheduled_for=None,
        )
        events.publication_event_record(publication=publication)


def publications_wake_due() -> int:
    """Queue again what is due but has had no word for a while: a publication whose worker died, or
    whose task or one-off schedule was lost (the maintenance schedule calls this)."""
    return PUBLICATIONS.sweep(quiet=Q(updated_at__lt=timezone.now() - WAKE_QUIET_AFTER))


def publication_run_due() -> list[int]:
    """Run every due publication in this process (the command's --run, hosts without workers)."""
    ran = []
    for publication_id in PUBLICATIONS.claimable().order_by("created_at", "id").values_list("pk", flat=True):
        if publication_run(publication_id=publication_id) is not None:
            ran.append(publication_id)
    return ran
