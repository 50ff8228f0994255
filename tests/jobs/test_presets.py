import pytest
from django.core.management import call_command

from accounts.models import Account
from topics.models import Topic
from voices.models import Language, Voice


@pytest.mark.django_db
def test_seed_presets_is_idempotent(capsys):
    call_command("seed_presets")
    counts = [Language.objects.count(), Voice.objects.count(), Topic.objects.count(), Account.objects.count()]
    logo_name = Account.objects.get(username="demo-channel").logo.name
    call_command("seed_presets")
    assert [
        Language.objects.count(),
        Voice.objects.count(),
        Topic.objects.count(),
        Account.objects.count(),
    ] == counts
    assert Account.objects.get(username="demo-channel").logo.name == logo_name
    assert "new: 0 languages, 0 voices, 0 topics, 0 accounts" in capsys.readouterr().out


@pytest.mark.django_db
def test_seed_presets_are_shared_and_usable():
    call_command("seed_presets")
    assert {"zh-CN", "en-US", "ja-JP"} <= set(
        Language.objects.filter(owner=None).values_list("code", flat=True)
    )
    for language in Language.objects.all():
        assert language.platform
        assert language.voices.exists(), f"{language.code} has no default voice"
    assert Topic.objects.filter(owner=None).count() >= 3
    assert all(topic.prompt_gen_image and topic.palette for topic in Topic.objects.all())
    account = Account.objects.get(username="demo-channel")
    assert account.owner is None and account.logo
