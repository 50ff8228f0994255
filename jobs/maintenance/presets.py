"""The shared presets every installation starts with (`manage.py seed_presets`)."""

import io

from django.core.files.base import ContentFile
from django.db import transaction
from PIL import Image, ImageDraw, ImageFont

from accounts.models import Account
from media_engine.fonts import default_font_path
from topics.models import Topic
from voices.models import Language, Voice

LANGUAGES = [
    # code, display name, TTS platform, default voice (espeak-ng names)
    ("zh-CN", "中文（普通话）", "espeak", "cmn"),
    ("en-US", "English (US)", "espeak", "en-us"),
    ("ja-JP", "日本語", "espeak", "ja"),
    ("es-ES", "Español", "espeak", "es"),
]

TOPICS = [
    {
        "name": "Health tips",
        "prompt_image_prefix": "warm natural light, photorealistic, soft focus background,",
        "prompt_gen_image": "a healthy elderly person in a calm home or park setting, fresh food, water, gentle exercise",
        "prompt_cover_image": "a smiling healthy senior holding a glass of water, morning sunlight, clean composition",
        "prompt_l4": "no text, no watermark, natural skin tones",
        "palette": ["#2E7D32", "#A5D6A7", "#F1F8E9"],
        "real_clip_ratio": 0.25,
        "clip_tags": "nature,morning,food",
    },
    {
        "name": "Life stories",
        "prompt_image_prefix": "cinematic, film still, warm colour grading, shallow depth of field,",
        "prompt_gen_image": "an ordinary family moment, kitchen table, old neighbourhood street, heartfelt emotion",
        "prompt_cover_image": "two generations of a family sharing a meal, golden hour, emotional",
        "prompt_l4": "no text, realistic faces, gentle mood",
        "palette": ["#5D4037", "#D7CCC8", "#FFF3E0"],
        "real_clip_ratio": 0.2,
        "clip_tags": "city,people,street",
    },
    {
        "name": "Nostalgia",
        "prompt_image_prefix": "1980s photograph, faded film colours, grain, vintage,",
        "prompt_gen_image": "a 1980s town scene, bicycles, old shop signs, black and white television, children playing",
        "prompt_cover_image": "a vintage 1980s street with bicycles and old shops, nostalgic film look",
        "prompt_l4": "no modern objects, no text",
        "palette": ["#8D6E63", "#FFCC80", "#FFF8E1"],
        "real_clip_ratio": 0.3,
        "clip_tags": "landscape,old,town",
    },
]

DEMO_ACCOUNT = {
    "username": "demo-channel",
    "platform": "youtube",
    "area": "CN",
    "extra": {
        "subtitle_background": "#578B2E",
        "subtitle_color": "#FFFFFF",
        "enable_transition": True,
        "transition_types": ["fade"],
        "logo_corner": "top-right",
    },
}


def presets_seed() -> dict[str, int]:
    """Create or refresh the shared presets; running it again changes nothing. The demo channel's
    logo is stored after the rows' transaction: on S3 storing is a network call."""
    created = _presets_rows()
    account = Account.objects.get(team=None, username=DEMO_ACCOUNT["username"])
    if not account.logo:
        account.logo.save("demo-channel.png", ContentFile(_logo_png("健康")), save=True)
    return created


@transaction.atomic
def _presets_rows() -> dict[str, int]:
    created = {"languages": 0, "voices": 0, "topics": 0, "accounts": 0}
    for code, name, platform, voice_name in LANGUAGES:
        language, was_created = Language.objects.get_or_create(
            team=None, code=code, defaults={"name": name, "platform": platform}
        )
        created["languages"] += was_created
        _, was_created = Voice.objects.get_or_create(
            team=None, name=voice_name, defaults={"language": language}
        )
        created["voices"] += was_created
    for topic in TOPICS:
        _, was_created = Topic.objects.get_or_create(team=None, name=topic["name"], defaults=topic)
        created["topics"] += was_created
    _, was_created = Account.objects.get_or_create(
        team=None, username=DEMO_ACCOUNT["username"], defaults=DEMO_ACCOUNT
    )
    created["accounts"] += was_created
    return created


def _logo_png(text: str, size: int = 256) -> bytes:
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((4, 4, size - 4, size - 4), fill=(46, 125, 50, 235), outline=(255, 255, 255, 255), width=8)
    font = ImageFont.truetype(str(default_font_path()), size // 3)
    draw.text((size / 2, size / 2), text, font=font, fill="white", anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
