import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from jobs.exports import importing
from jobs.models import ExecutionStatus, Job
from tests.admin.conftest import client_for
from tests.factories import make_account, make_language, make_topic, make_voice

pytestmark = pytest.mark.django_db

IMPORT_URL = reverse("admin:jobs_job_import")


@pytest.fixture
def presets(db):
    language = make_language(code="zh-CN")
    return {
        "language": language,
        "voice": make_voice(name="cmn", language=language),
        "topic": make_topic(name="Health tips"),
        "account": make_account(username="demo-channel"),
    }


CSV = (
    "title,content,language,voice,topic,account,speech_speed,orientation,extra\n"
    'First,今天天气很好。,zh-CN,cmn,Health tips,demo-channel,1.1,vertical,"{""h2v"": true}"\n'
    "Second,我们去公园。,zh-CN,cmn,Health tips,demo-channel,,,\n"
    'Bad,,xx-XX,cmn,Nope,demo-channel,9,sideways,"{""typo"": 1}"\n'
).encode()


def test_parse_checks_every_row(presets, operator):
    rows = importing.import_parse(CSV, filename="jobs.csv", user=operator, team=operator.personal_team)
    assert [row.ok for row in rows] == [True, True, False]
    assert rows[0].data["language"] == presets["language"] and rows[0].data["extra"] == {"h2v": True}
    assert rows[0].data["speech_speed"] == 1.1 and rows[0].data["orientation"] == "vertical"
    assert set(rows[2].errors) == {"content", "language", "topic", "speech_speed", "orientation", "extra"}


def test_parse_json_and_create_with_enqueue(presets, operator):
    payload = json.dumps([{"title": "J", "content": "一句话。", "language": "zh-CN", "runorder": 3}]).encode()
    rows = importing.import_parse(payload, filename="jobs.json", user=operator, team=operator.personal_team)
    jobs = importing.import_create(rows, user=operator, team=operator.personal_team, enqueue=True)
    assert [(job.title, job.owner, job.runorder) for job in jobs] == [("J", operator, 3)]
    assert jobs[0].executions.get().status == ExecutionStatus.PENDING


def test_parse_hides_other_operators_presets(operator, other_operator):
    make_account(username="theirs", owner=other_operator)
    payload = json.dumps([{"title": "J", "content": "一句话。", "account": "theirs"}]).encode()
    [row] = importing.import_parse(payload, filename="jobs.json", user=operator, team=operator.personal_team)
    assert "account" in row.errors


def test_admin_import_preview_then_confirm(presets, operator):
    client = client_for(operator)
    preview = client.post(IMPORT_URL, {"file": SimpleUploadedFile("jobs.csv", CSV)})
    html = preview.content.decode()
    assert preview.status_code == 200
    assert "2 good row(s), 1 bad row(s)" in html and "row-bad" in html
    assert Job.objects.count() == 0
    confirm = preview.context["confirm"]
    response = client.post(
        IMPORT_URL,
        {"confirm": "1", "payload": confirm.initial["payload"], "filename": "jobs.csv", "enqueue": "on"},
        follow=True,
    )
    assert "Created 2 job(s); skipped 1 bad row(s)." in response.content.decode()
    assert sorted(Job.objects.values_list("title", flat=True)) == ["First", "Second"]
    assert all(job.executions.count() == 1 for job in Job.objects.all())


def test_admin_import_rejects_unknown_file_type(operator):
    response = client_for(operator).post(IMPORT_URL, {"file": SimpleUploadedFile("jobs.txt", b"x")})
    assert "Upload a .csv or .json file." in response.content.decode()


def test_admin_import_denied_without_add_permission(viewer):
    assert client_for(viewer).get(IMPORT_URL).status_code == 403


def test_import_command_reports_rows_and_fails_on_bad_ones(presets, tmp_path, capsys):
    path = tmp_path / "jobs.csv"
    path.write_bytes(CSV)
    with pytest.raises(SystemExit) as exit_info:
        call_command("import_jobs", str(path), "--enqueue")
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert "row 1 'First': created job" in out and "(queued)" in out
    assert "row 3 'Bad': ERROR" in out and "2 created, 1 bad, 3 rows in all." in out
    assert Job.objects.filter(owner=None).count() == 2


def test_import_command_succeeds_on_good_file(presets, tmp_path):
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps({"jobs": [{"title": "A", "content": "一句话。"}]}), encoding="utf-8")
    call_command("import_jobs", str(path))
    assert Job.objects.get().title == "A"


def test_import_command_with_owner(presets, tmp_path, operator):
    path = tmp_path / "jobs.json"
    path.write_text(
        json.dumps([{"title": "Mine", "content": "一句话。", "topic": "Health tips"}]), encoding="utf-8"
    )
    call_command("import_jobs", str(path), "--owner", operator.username)
    assert Job.objects.get().owner == operator
