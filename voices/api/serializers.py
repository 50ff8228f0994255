import re

from rest_framework import serializers

from accounts.api.ownership import OwnedPrimaryKeyField, OwnedSerializer
from accounts.api.representation import CompiledRepresentation
from accounts.uploads import check_audio
from media_engine.tts import BACKENDS

from ..models import Language, Voice

LANGUAGE_CODE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class LanguageSerializer(OwnedSerializer):
    platform = serializers.ChoiceField(
        choices=sorted(BACKENDS), default="espeak", help_text="TTS backend that speaks this language."
    )

    unique_per_team = ("code",)

    class Meta:
        model = Language
        fields = ["id", "code", "name", "platform", "team", "owner", "shared", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def validate_code(self, code: str) -> str:
        if not LANGUAGE_CODE.match(code):
            raise serializers.ValidationError("Use a BCP-47 code such as zh-CN or en-US.")
        return code


class LanguageBriefSerializer(CompiledRepresentation, serializers.ModelSerializer):
    class Meta:
        model = Language
        fields = ["id", "code", "name", "platform"]


class VoiceSerializer(OwnedSerializer):
    language = OwnedPrimaryKeyField(queryset=Language.objects.all(), allow_null=True, required=False)
    reference_url = serializers.SerializerMethodField(
        help_text="A signed link to the reference audio, or empty."
    )

    class Meta:
        model = Voice
        fields = [
            "id",
            "name",
            "language",
            "reference_url",
            "team",
            "owner",
            "shared",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def get_reference_url(self, obj: Voice) -> str:
        return obj.reference.url if obj.reference else ""


class VoiceBriefSerializer(CompiledRepresentation, VoiceSerializer):
    class Meta(VoiceSerializer.Meta):
        fields = ["id", "name", "language", "reference_url"]


class AudioUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="WAV, MP3, M4A, Ogg or FLAC, at most 20 MB.")

    def validate_file(self, uploaded):
        return check_audio(uploaded)
