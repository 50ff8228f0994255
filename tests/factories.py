"""Small factory functions for tests: each makes one valid row, overrides by keyword."""

import itertools

from accounts.models import Account, Membership, Role, Team, User
from jobs.models import Job, JobExecution
from topics.models import Topic
from voices.models import Language, Voice

_numbers = itertools.count(1)


def make_user(*, personal_team: bool = True, **fields) -> User:
    """A user with a personal team (its admin), as the teams migration gives every existing user."""
    number = next(_numbers)
    fields.setdefault("username", f"user{number}")
    password = fields.pop("password", "pass-word-123")
    user = User(**fields)
    user.set_password(password)
    user.save()
    if personal_team:
        team = Team.objects.create(name=user.username, slug=f"personal-{user.username}", personal_of=user)
        Membership.objects.create(team=team, user=user, role=Role.ADMIN)
    return user


def make_team(*, members: dict[User, str] | None = None, **fields) -> Team:
    """A team; `members` maps users to their roles."""
    number = next(_numbers)
    fields.setdefault("name", f"Team {number}")
    fields.setdefault("slug", f"team-{number}")
    team = Team.objects.create(**fields)
    for member, role in (members or {}).items():
        Membership.objects.create(team=team, user=member, role=role)
    return team


def _team_of_owner(fields: dict) -> dict:
    """Rows of a user belong to the user's personal team unless a team is given (team=None: a preset)."""
    owner = fields.get("owner")
    if "team" not in fields and owner is not None:
        fields["team"] = Team.objects.filter(personal_of=owner).first()
    return fields


def make_language(**fields) -> Language:
    fields.setdefault("code", f"x{next(_numbers)}-XX")
    fields.setdefault("name", "Test language")
    fields.setdefault("platform", "espeak")
    _team_of_owner(fields)
    return Language.objects.create(**fields)


def make_voice(**fields) -> Voice:
    fields.setdefault("name", "cmn")
    _team_of_owner(fields)
    return Voice.objects.create(**fields)


def make_topic(**fields) -> Topic:
    fields.setdefault("name", f"Topic {next(_numbers)}")
    fields.setdefault("prompt_gen_image", "a calm landscape")
    _team_of_owner(fields)
    return Topic.objects.create(**fields)


def make_account(**fields) -> Account:
    fields.setdefault("username", f"channel{next(_numbers)}")
    _team_of_owner(fields)
    return Account.objects.create(**fields)


def make_job(**fields) -> Job:
    fields.setdefault("title", f"Job {next(_numbers)}")
    fields.setdefault("content", "今天天气很好。我们去公园散步。")
    _team_of_owner(fields)
    return Job.objects.create(**fields)


def make_execution(job: Job, **fields) -> JobExecution:
    return JobExecution.objects.create(job=job, **fields)


def make_preset_job(**fields) -> Job:
    """A short Chinese job on the shared presets (seeded here): espeak voice, demo channel and its logo."""
    from jobs.maintenance.presets import presets_seed

    presets_seed()
    fields.setdefault("title", "测试")
    fields.setdefault("content", "今天天气很好。我们去公园散步吧。")
    fields.setdefault("speech_speed", 1.2)
    fields.setdefault("language", Language.objects.get(team=None, code="zh-CN"))
    fields.setdefault("voice", Voice.objects.get(team=None, name="cmn"))
    fields.setdefault("topic", Topic.objects.get(team=None, name="Health tips"))
    fields.setdefault("account", Account.objects.get(team=None, username="demo-channel"))
    return make_job(**fields)
