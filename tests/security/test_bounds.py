"""Bounds on every number and text an operator sends (issue 14).

A hostile operator tries each through the real API, the admin pages and the importer: a runorder
out of range, a priority push past the front of the queue, overlong publishing texts, NUL and other
control characters, a subtitle font that rewrites the ASS style line, a LoRA name that is a path.
Each is refused with a 400 / a form error / an import row error (or, for the texts a job's own
cleaning already covers, stored cleaned) -- never a 500 -- and nothing stored changes.

The overflow and NUL cases only turn into server errors on PostgreSQL: run this file there too
(DATABASE_URL=postgres://...).
"""

import json

import pytest
import yaml
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import Account
from jobs.models import Job, JobSplit
from tests.admin.conftest import job_form
from tests.factories import make_account, make_job, make_topic, make_user
from topics.models import Topic
from voices.models import Language, Voice

pytestmark = pytest.mark.django_db

# The documented contract (the API schema says the same): numbers a client may send.
RUNORDER_MIN, RUNORDER_MAX = -1_000_000, 1_000_000
PUBLISH_TITLE_MAX, DESCRIPTION_MAX = 100, 5000

OPERATOR_MODELS = ["job", "jobexecution", "jobsplit", "stockclip", "account", "voice", "language", "topic"]
JOBS = "/api/v1/jobs/"
ADMIN_JOB_ADD = reverse("admin:jobs_job_add")
ADMIN_JOB_LIST = reverse("admin:jobs_job_changelist")
ADMIN_IMPORT = reverse("admin:jobs_job_import")


@pytest.fixture(autouse=True)
def queue_only(settings, monkeypatch):
    """Renders are only ever queued here, never run."""
    from django_q.conf import Conf

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
    monkeypatch.setattr(Conf, "SYNC", False)
    settings.API_THROTTLE_USER = None
    settings.API_THROTTLE_ANON = None


def make_operator():
    user = make_user(is_staff=True)
    codenames = [
        f"{action}_{model}" for model in OPERATOR_MODELS for action in ("view", "add", "change", "delete")
    ]
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def attacker(db):
    return make_operator()


@pytest.fixture
def victim(db):
    return make_operator()


def api_for(user) -> APIClient:
    api = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return api


def admin_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def job_url(job: Job, action: str = "") -> str:
    return f"{JOBS}{job.pk}/" + (f"{action}/" if action else "")


def form_errors(response, field: str | None = None) -> list[str]:
    assert response.status_code == 200, f"the form should come back with errors, not {response.status_code}"
    form = response.context["adminform"].form
    return list(form.non_field_errors() if field is None else form.errors.get(field, []))


def stored(job: Job) -> dict:
    """What a refused write must leave as it was."""
    return dict(
        Job.objects.filter(pk=job.pk)
        .values("title", "content", "publish_title", "description", "runorder", "extra", "updated_at")
        .get()
    )


def import_preview(client: Client, records: list[dict]):
    payload = json.dumps(records).encode()
    return client.post(ADMIN_IMPORT, {"file": SimpleUploadedFile("jobs.json", payload)})


def import_confirm(client: Client, records: list[dict]):
    return client.post(
        ADMIN_IMPORT, {"confirm": "1", "payload": json.dumps(records), "filename": "jobs.json"}, follow=True
    )


def front_of_the_queue() -> list[int]:
    return list(Job.objects.alive().order_by("runorder", "id").values_list("pk", flat=True))


def all_runorders_in_range() -> bool:
    runorders = Job.objects.values_list("runorder", flat=True)
    return all(RUNORDER_MIN <= value <= RUNORDER_MAX for value in runorders)


# ---------------------------------------------------------------- runorder


OUT_OF_RANGE_RUNORDERS = [-(2**31), RUNORDER_MIN - 1, RUNORDER_MAX + 1, 2**31 - 1, 2**63]


@pytest.mark.parametrize("runorder", OUT_OF_RANGE_RUNORDERS)
def test_api_refuses_runorder_outside_the_documented_range(attacker, runorder):
    api = api_for(attacker)
    job = make_job(owner=attacker, runorder=3)
    before = stored(job)

    created = api.post(JOBS, {"title": "t", "content": "一句话。", "runorder": runorder}, format="json")
    changed = api.patch(job_url(job), {"runorder": runorder}, format="json")

    assert created.status_code == 400 and "runorder" in created.data
    assert changed.status_code == 400 and "runorder" in changed.data
    assert Job.objects.count() == 1 and stored(job) == before


@pytest.mark.parametrize("runorder", [RUNORDER_MIN, RUNORDER_MAX])
def test_api_accepts_runorder_at_the_documented_bounds(attacker, runorder):
    response = api_for(attacker).post(
        JOBS, {"title": "t", "content": "一句话。", "runorder": runorder}, format="json"
    )
    assert response.status_code == 201 and response.data["runorder"] == runorder


@pytest.mark.parametrize("runorder", [-(2**31), RUNORDER_MIN - 1, RUNORDER_MAX + 1])
def test_admin_job_form_refuses_runorder_outside_the_documented_range(attacker, runorder):
    response = admin_for(attacker).post(ADMIN_JOB_ADD, job_form(runorder=str(runorder)))
    assert form_errors(response, "runorder")
    assert not Job.objects.exists()


def test_import_refuses_runorder_outside_the_documented_range(attacker):
    client = admin_for(attacker)
    records = [
        {"title": "Ok", "content": "一句话。", "runorder": 1},
        {"title": "Evil", "content": "一句话。", "runorder": -(2**31)},
    ]

    preview = import_preview(client, records)
    assert "1 good row(s), 1 bad row(s)" in preview.content.decode()
    import_confirm(client, records)

    assert list(Job.objects.values_list("title", "runorder")) == [("Ok", 1)]


def test_increase_priority_at_the_lowest_runorder_stays_in_range_and_goes_first(attacker):
    """A job of the team parked at the lowest runorder allowed; pushing another ahead of it must neither
    leave the range nor give up on "ahead of everything the team queued" (runorder orders jobs only
    inside a team: tests/jobs/test_fair_share.py)."""
    team_api = api_for(attacker)
    parked = team_api.post(
        JOBS, {"title": "front", "content": "一句话。", "runorder": RUNORDER_MIN}, format="json"
    ).data["id"]
    second = team_api.post(
        JOBS, {"title": "second", "content": "一句话。", "runorder": -5}, format="json"
    ).data["id"]
    third = make_job(owner=attacker, runorder=0).pk
    mine = make_job(owner=attacker, runorder=7)

    response = api_for(attacker).post(job_url(mine, "increase_priority"))

    assert response.status_code == 200
    assert RUNORDER_MIN <= response.data["runorder"] <= RUNORDER_MAX
    assert front_of_the_queue() == [mine.pk, parked, second, third]  # the others keep their order
    assert all_runorders_in_range()


def test_increase_priority_past_a_stored_minus_2_31_is_no_server_error(attacker):
    """A runorder of -2^31 stored before the range existed: -2^31 - 1 overflowed PostgreSQL's integer
    (a 500 for every team); now the job goes first inside the range."""
    legacy = make_job(owner=attacker, runorder=-(2**31)).pk
    mine = make_job(owner=attacker, runorder=0)

    response = api_for(attacker).post(job_url(mine, "increase_priority"))

    assert response.status_code == 200
    assert RUNORDER_MIN <= response.data["runorder"] <= RUNORDER_MAX
    assert front_of_the_queue() == [mine.pk, legacy]


def test_increase_priority_refuses_with_a_message_when_every_runorder_below_0_is_taken(attacker, monkeypatch):
    """A million different runorders below 0 leave no room ahead; shown here with a range of -2..."""
    monkeypatch.setattr("jobs.services.RUNORDER_MIN", -2)
    ahead = [make_job(owner=attacker, runorder=-2).pk, make_job(owner=attacker, runorder=-1).pk]
    mine = make_job(owner=attacker, runorder=0)

    response = api_for(attacker).post(job_url(mine, "increase_priority"))

    assert response.status_code == 400 and "front of the queue is full" in str(response.data)
    assert front_of_the_queue() == [*ahead, mine.pk]
    assert sorted(Job.objects.values_list("runorder", flat=True)) == [-2, -1, 0]


def test_admin_increase_priority_action_at_the_lowest_runorder_stays_in_range(attacker):
    parked = make_job(owner=attacker, runorder=-(2**31)).pk
    first, second = make_job(owner=attacker, runorder=1), make_job(owner=attacker, runorder=2)

    response = admin_for(attacker).post(
        ADMIN_JOB_LIST,
        {"action": "increase_priority", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )

    assert response.status_code == 200 and "Moved 2 job(s) to the front" in response.content.decode()
    assert front_of_the_queue() == [first.pk, second.pk, parked]  # the selected keep their order
    assert all_runorders_in_range()


# ---------------------------------------------------------------- text lengths


OVERLONG = [("publish_title", PUBLISH_TITLE_MAX), ("description", DESCRIPTION_MAX)]


@pytest.mark.parametrize("field, limit", OVERLONG)
def test_api_refuses_overlong_publish_title_and_description(attacker, field, limit):
    api = api_for(attacker)
    job = make_job(owner=attacker)
    before = stored(job)

    created = api.post(JOBS, {"title": "t", "content": "一句话。", field: "x" * (limit + 1)}, format="json")
    changed = api.patch(job_url(job), {field: "x" * (limit + 1)}, format="json")
    at_limit = api.patch(job_url(job), {field: "x" * limit}, format="json")

    assert created.status_code == 400 and f"at most {limit}" in str(created.data[field])
    assert changed.status_code == 400 and field in changed.data
    assert Job.objects.count() == 1
    assert at_limit.status_code == 200 and at_limit.data[field] == "x" * limit
    assert {**stored(job), field: before[field], "updated_at": None} == {**before, "updated_at": None}


@pytest.mark.parametrize("field, limit", OVERLONG)
def test_admin_job_form_refuses_overlong_publish_title_and_description(attacker, field, limit):
    response = admin_for(attacker).post(ADMIN_JOB_ADD, job_form(**{field: "x" * (limit + 1)}))
    assert any(f"at most {limit}" in message for message in form_errors(response, field))
    assert not Job.objects.exists()


def test_import_refuses_overlong_publish_title_and_description(attacker):
    client = admin_for(attacker)
    records = [
        {"title": "Long title", "content": "一句话。", "publish_title": "x" * (PUBLISH_TITLE_MAX + 1)},
        {"title": "Long text", "content": "一句话。", "description": "x" * (DESCRIPTION_MAX + 1)},
    ]

    preview = import_preview(client, records)
    assert "0 good row(s), 2 bad row(s)" in preview.content.decode()
    import_confirm(client, records)

    assert not Job.objects.exists()


def test_api_schema_documents_the_bounds(client):
    schema = yaml.safe_load(client.get("/api/v1/schema/").content)
    write = schema["components"]["schemas"]["JobWrite"]["properties"]
    assert (write["runorder"]["minimum"], write["runorder"]["maximum"]) == (RUNORDER_MIN, RUNORDER_MAX)
    assert write["publish_title"]["maxLength"] == PUBLISH_TITLE_MAX
    assert write["description"]["maxLength"] == DESCRIPTION_MAX
    assert write["title"]["maxLength"] == 255
    topic = schema["components"]["schemas"]["Topic"]["properties"]
    assert topic["prompt_gen_image"]["maxLength"] == 2000
    assert topic["lora_name"]["oneOf"][0]["pattern"]  # a plain name, or blank
    brand = schema["components"]["schemas"]["Account"]["properties"]["extra"]["properties"]
    assert brand["subtitle_font"]["pattern"]


# ---------------------------------------------------------------- NUL and control characters


@pytest.mark.parametrize("value", ["a\x00b", "\x00", "evil\x1b[2J", "two\nlines", "bell\x07"])
def test_api_refuses_nul_and_control_characters_in_job_extra_text(attacker, value):
    """NUL in a JSON string is a 500 on PostgreSQL (jsonb cannot hold \\u0000)."""
    api = api_for(attacker)
    job = make_job(owner=attacker, extra={"title_text": "kept"})
    before = stored(job)

    created = api.post(
        JOBS, {"title": "t", "content": "一句话。", "extra": {"title_text": value}}, format="json"
    )
    changed = api.patch(job_url(job), {"extra": {"index_text": value}}, format="json")

    assert created.status_code == 400 and "Control characters" in str(created.data["extra"]["title_text"])
    assert changed.status_code == 400 and "index_text" in changed.data["extra"]
    assert Job.objects.count() == 1 and stored(job) == before


def test_api_refuses_nul_in_the_music_key_of_job_extra(attacker):
    """The key names the operator's own folder, so only the NUL is wrong: jsonb cannot hold it."""
    api = api_for(attacker)
    key = f"music/{attacker.pk.hex}/song\x00.mp3"

    response = api.post(JOBS, {"title": "t", "content": "一句话。", "extra": {"music": key}}, format="json")

    assert response.status_code == 400 and "music" in response.data["extra"]
    assert not Job.objects.exists()


def test_admin_job_form_refuses_nul_in_extra_text(attacker):
    response = admin_for(attacker).post(ADMIN_JOB_ADD, job_form(extra='{"title_text": "a\\u0000b"}'))
    assert any("Control characters" in message for message in form_errors(response, "extra"))
    assert not Job.objects.exists()


def test_import_with_nul_is_refused_or_cleaned_never_a_server_error(attacker):
    client = admin_for(attacker)
    records = [
        {
            "title": "Clean me",
            "content": "一句\x00话。",
            "publish_title": "pub\x00lish",
            "description": "line one\r\nline\x00 two\x1b",
        },
        {"title": "Evil extra", "content": "一句话。", "extra": {"desc_text": "a\x00b"}},
    ]

    preview = import_preview(client, records)
    assert "1 good row(s), 1 bad row(s)" in preview.content.decode()
    response = import_confirm(client, records)

    assert response.status_code == 200
    job = Job.objects.get()
    assert (job.title, job.content, job.publish_title, job.description) == (
        "Clean me",
        "一句话。",
        "publish",
        "line one\nline two",
    )


@pytest.mark.parametrize("field", ["publish_title", "description"])
def test_api_cleans_control_characters_from_publish_title_and_description(attacker, field):
    response = api_for(attacker).post(
        JOBS, {"title": "t", "content": "一句话。", field: "a\x1b[31mb\x7f\u2028c"}, format="json"
    )
    assert response.status_code == 201
    assert getattr(Job.objects.get(), field) == "a[31mbc"


PRESET_TEXTS = [
    ("/api/v1/accounts/", {"username": "chan"}, "username", "chan\nnel"),
    ("/api/v1/accounts/", {"username": "chan"}, "area", "area\x1b[2J"),
    ("/api/v1/topics/", {"name": "topic"}, "name", "to\x07pic"),
    ("/api/v1/topics/", {"name": "topic"}, "prompt_gen_image", "a calm sea\x1b[31m"),
    ("/api/v1/topics/", {"name": "topic"}, "clip_tags", "sea,\x08land"),
    ("/api/v1/languages/", {"code": "en-GB", "platform": "espeak"}, "name", "Eng\u2028lish"),
    ("/api/v1/voices/", {}, "name", "voice\x00"),
]


@pytest.mark.parametrize("url, fields, field, value", PRESET_TEXTS)
def test_api_refuses_control_characters_in_account_topic_and_voice_fields(
    attacker, url, fields, field, value
):
    response = api_for(attacker).post(url, {"name": "x", **fields, field: value}, format="json")
    assert response.status_code == 400 and field in response.data
    assert not (
        Account.objects.exists()
        or Topic.objects.exists()
        or Language.objects.exists()
        or Voice.objects.exists()
    )


def test_api_refuses_nul_in_topic_extra(attacker):
    api = api_for(attacker)
    topic = make_topic(owner=attacker, extra={"kept": True})

    created = api.post("/api/v1/topics/", {"name": "t", "extra": {"note": "a\x00b"}}, format="json")
    changed = api.patch(f"/api/v1/topics/{topic.pk}/", {"extra": {"nested": [{"\x00key": 1}]}}, format="json")

    assert created.status_code == 400 and "extra" in created.data
    assert changed.status_code == 400 and "extra" in changed.data
    topic.refresh_from_db()
    assert Topic.objects.count() == 1 and topic.extra == {"kept": True}


@pytest.mark.parametrize(
    "extra",
    [
        {"human_config": {"note": "a\x00b"}},
        {"human_config": {"url": "x\x00"}},
        {"subtitle_font": "Noto\x00"},
        {"subtitle_color": "#FFFFFF\n"},
    ],
)
def test_api_refuses_nul_in_the_brand_profile(attacker, extra):
    api = api_for(attacker)
    account = make_account(owner=attacker, extra={"subtitle_color": "#FFFFFF"})

    created = api.post("/api/v1/accounts/", {"username": "new", "extra": extra}, format="json")
    changed = api.patch(f"/api/v1/accounts/{account.pk}/", {"extra": extra}, format="json")

    assert created.status_code == 400 and "extra" in created.data
    assert changed.status_code == 400 and "extra" in changed.data
    account.refresh_from_db()
    assert Account.objects.count() == 1 and account.extra == {"subtitle_color": "#FFFFFF"}


def test_admin_topic_form_refuses_nul_in_extra_and_control_characters(attacker):
    response = admin_for(attacker).post(
        reverse("admin:topics_topic_add"),
        {
            "name": "to\x1bpic",
            "palette": "",
            "real_clip_ratio": "0.4",
            "lora_weight": "100",
            "extra": '{"note": "a\\u0000b"}',
        },
    )
    assert form_errors(response, "name") and form_errors(response, "extra")
    assert not Topic.objects.exists()


def test_admin_voice_and_account_forms_refuse_control_characters(attacker):
    client = admin_for(attacker)
    voice = client.post(reverse("admin:voices_voice_add"), {"name": "voice\x1b", "language": ""})
    account = client.post(
        reverse("admin:accounts_account_add"),
        {
            "username": "chan\x07",
            "platform": "youtube",
            "area": "",
            "subtitle_color": "#ffffff",
            "subtitle_background": "#000000",
            "human_config": "",
        },
    )
    assert form_errors(voice, "name") and form_errors(account, "username")
    assert not Voice.objects.exists() and not Account.objects.exists()


def segment_of(owner) -> JobSplit:
    job = make_job(owner=owner, content="第一句。")
    return JobSplit.objects.create(job=job, index=0, start_ms=0, end_ms=1000, text="第一句。", prompt="kept")


def test_api_segment_prompt_with_control_characters_is_cleaned(attacker):
    split_row = segment_of(attacker)
    response = api_for(attacker).patch(
        f"{JOBS}{split_row.job_id}/splits/0/", {"prompt": "a sunny\x1b[2J beach\x07"}, format="json"
    )
    assert response.status_code == 200
    split_row.refresh_from_db()
    assert split_row.prompt == "a sunny[2J beach"


def test_admin_storyboard_segment_with_nul_is_cleaned_never_a_server_error(attacker):
    """The storyboard page posts raw fields (no Django form refuses NUL there)."""
    split_row = segment_of(attacker)
    response = admin_for(attacker).post(
        reverse("admin:jobs_job_storyboard", args=[split_row.job_id]),
        {f"text-{split_row.pk}": "第\x00二句。", f"prompt-{split_row.pk}": "a\x00b\x1b"},
    )
    assert response.status_code == 302
    split_row.refresh_from_db()
    assert (split_row.text, split_row.prompt) == ("第二句。", "ab")


# ---------------------------------------------------------------- subtitle font


FONT_INJECTIONS = [
    "Arial,200,&H000000FF",  # a comma moves every later field of the style line
    "Arial\nStyle: Default,Arial,400,&H000000FF,&H000000FF,&H00000000,&H00000000",
    "Arial\r\n[Events]",
    "Arial{\\fs400}",
    "Arial;drop",
    "Arial:bold",
    "../../fonts/evil",
]


@pytest.mark.parametrize("font", FONT_INJECTIONS)
def test_api_refuses_subtitle_font_that_rewrites_the_ass_style_line(attacker, font):
    account = make_account(owner=attacker, extra={"subtitle_font": "Noto Sans CJK SC"})
    response = api_for(attacker).patch(
        f"/api/v1/accounts/{account.pk}/", {"extra": {"subtitle_font": font}}, format="json"
    )
    assert response.status_code == 400 and "subtitle_font" in response.data["extra"]
    account.refresh_from_db()
    assert account.extra == {"subtitle_font": "Noto Sans CJK SC"}


def test_a_subtitle_font_stored_before_the_check_cannot_rewrite_the_style_line(attacker, tmp_path):
    from accounts.brand import Brand
    from media_engine import fonts, subtitles

    account = make_account(owner=attacker, extra={"subtitle_font": FONT_INJECTIONS[1]})
    style = Brand.of(account).subtitle_style(width=1360, height=768)
    path = tmp_path / "subtitles.ass"
    subtitles.write_ass([subtitles.Cue(0, 1000, ["一句话。"])], path, width=1360, height=768, style=style)

    lines = path.read_text(encoding="utf-8").splitlines()
    [style_line] = [line for line in lines if line.startswith("Style:")]
    assert style_line.split(",")[1] == fonts.FAMILY and len(style_line.split(",")) == 23


@pytest.mark.parametrize("font", ["Noto Sans CJK SC", "思源黑体", "Source_Han-Sans 2", "DejaVu Sans"])
def test_api_accepts_a_font_family_name(attacker, font):
    account = make_account(owner=attacker)
    response = api_for(attacker).patch(
        f"/api/v1/accounts/{account.pk}/", {"extra": {"subtitle_font": font}}, format="json"
    )
    assert response.status_code == 200 and response.data["extra"] == {"subtitle_font": font}


def test_admin_account_form_refuses_subtitle_font_that_rewrites_the_ass_style_line(attacker):
    account = make_account(owner=attacker, username="mine")
    response = admin_for(attacker).post(
        reverse("admin:accounts_account_change", args=[account.pk]),
        {
            "username": "mine",
            "platform": "youtube",
            "area": "",
            "subtitle_color": "#ffffff",
            "subtitle_background": "#000000",
            "human_config": "",
            "subtitle_font": "Arial,200,&H000000FF",
        },
    )
    assert form_errors(response, "subtitle_font")
    account.refresh_from_db()
    assert account.extra == {}


# ---------------------------------------------------------------- LoRA name


LORA_PATHS = [
    "/etc/passwd",
    "../../secrets/key",
    "styles/../../x",
    "styles/warm",
    "styles\\warm",
    "..",
    ".",
    "C:\\loras\\x",
    "~/x",
    ".hidden",
]


@pytest.mark.parametrize("lora_name", LORA_PATHS)
def test_api_refuses_lora_name_that_is_a_path(attacker, lora_name):
    api = api_for(attacker)
    topic = make_topic(owner=attacker, lora_name="warm-photo")

    created = api.post("/api/v1/topics/", {"name": "new", "lora_name": lora_name}, format="json")
    changed = api.patch(f"/api/v1/topics/{topic.pk}/", {"lora_name": lora_name}, format="json")

    assert created.status_code == 400 and "lora_name" in created.data
    assert changed.status_code == 400 and "lora_name" in changed.data
    topic.refresh_from_db()
    assert Topic.objects.count() == 1 and topic.lora_name == "warm-photo"


@pytest.mark.parametrize("lora_name", ["warm-photo", "warm_photo.safetensors", "水彩 v2", ""])
def test_api_accepts_a_plain_lora_file_name(attacker, lora_name):
    response = api_for(attacker).post(
        "/api/v1/topics/", {"name": "new", "lora_name": lora_name}, format="json"
    )
    assert response.status_code == 201 and response.data["lora_name"] == lora_name


def test_admin_topic_form_refuses_lora_name_that_is_a_path(attacker):
    topic = make_topic(owner=attacker, lora_name="warm-photo")
    response = admin_for(attacker).post(
        reverse("admin:topics_topic_change", args=[topic.pk]),
        {
            "name": topic.name,
            "palette": "",
            "real_clip_ratio": "0.4",
            "lora_weight": "100",
            "extra": "{}",
            "lora_name": "../../../etc/passwd",
        },
    )
    assert form_errors(response, "lora_name")
    topic.refresh_from_db()
    assert topic.lora_name == "warm-photo"


def test_import_with_a_number_where_text_belongs_is_a_row_error(attacker):
    client = admin_for(attacker)
    records = [{"title": 5, "content": "一句话。", "description": 7, "publish_title": ["x"]}]

    preview = import_preview(client, records)

    assert "0 good row(s), 1 bad row(s)" in preview.content.decode()
    assert not Job.objects.exists()


def test_import_with_nul_in_a_preset_name_is_a_row_error(attacker):
    """The row's language/voice/topic/account names are looked up: NUL in the lookup was a 500 on
    PostgreSQL."""
    client = admin_for(attacker)
    records = [{"title": "t", "content": "一句话。", "language": "zh\x00CN", "topic": "a\x00"}]

    preview = import_preview(client, records)

    assert "0 good row(s), 1 bad row(s)" in preview.content.decode()


def test_admin_autocomplete_with_nul_is_no_server_error(attacker):
    """The job page's preset pickers search as the operator types; NUL was a 500 on PostgreSQL."""
    make_topic(owner=attacker, name="Health tips")
    response = admin_for(attacker).get(
        reverse("admin:autocomplete"),
        {"term": "Hea\x00", "app_label": "jobs", "model_name": "job", "field_name": "topic"},
    )
    assert response.status_code == 200
