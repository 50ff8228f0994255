from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from accounts.api.docs import ERROR_403, ERROR_404, owned_crud_docs, response_example, validation_error
from accounts.api.ownership import OwnedModelViewSet

from ..models import Language, Voice
from .serializers import AudioUploadSerializer, LanguageSerializer, VoiceSerializer

LANGUAGE_EXAMPLE = {
    "id": 1,
    "code": "zh-CN",
    "name": "中文",
    "platform": "espeak",
    "team": None,
    "owner": None,
    "shared": True,
    "created_at": "2025-01-01T12:00:00Z",
    "updated_at": "2025-01-01T12:00:00Z",
}
VOICE_EXAMPLE = {
    "id": 2,
    "name": "cmn",
    "language": 1,
    "reference_url": "/files/InZvaWNlcy9yZWZlcmVuY2VzL2EubXAzIg:1tX...",
    "team": "health",
    "owner": "6f1c1b8e-4c1a-4d0e-9d1e-2b8f0c6a1e11",
    "shared": False,
    "created_at": "2025-01-01T12:00:00Z",
    "updated_at": "2025-01-01T12:00:00Z",
}


@owned_crud_docs(
    noun="language",
    plural="languages",
    serializer=LanguageSerializer,
    tag="voices",
    example=LANGUAGE_EXAMPLE,
    write_example={"code": "en-US", "name": "English", "platform": "edge"},
    invalid_example={"code": ["There is already a language with this code."]},
)
class LanguageViewSet(OwnedModelViewSet):
    """Narration languages and the TTS backend that speaks each."""

    queryset = Language.objects.all()
    serializer_class = LanguageSerializer
    filterset_fields = ["code", "platform"]


@owned_crud_docs(
    noun="voice",
    plural="voices",
    serializer=VoiceSerializer,
    tag="voices",
    example=VOICE_EXAMPLE,
    write_example={"name": "zh-CN-XiaoxiaoNeural", "language": 1},
    invalid_example={"language": ["Language 99 does not exist or is not yours."]},
)
class VoiceViewSet(OwnedModelViewSet):
    """Voices: a backend's voice name, and reference audio for voice-cloning backends."""

    queryset = Voice.objects.all()
    serializer_class = VoiceSerializer
    filterset_fields = ["language"]

    def get_queryset(self):
        return super().get_queryset().select_related("language")

    @extend_schema(
        summary="Upload the voice's reference audio",
        tags=["voices"],
        request={"multipart/form-data": AudioUploadSerializer},
        responses={
            200: VoiceSerializer,
            400: validation_error(
                {"file": ["Audio must be WAV, MP3, M4A, Ogg or FLAC with an audio stream."]}
            ),
            403: ERROR_403,
            404: ERROR_404,
        },
        examples=[response_example("Voice with its reference", VOICE_EXAMPLE)],
        description="WAV, MP3, M4A, Ogg or FLAC of at most 20 MB, checked with ffprobe and stored under a "
        "generated name.",
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def reference(self, request, pk=None) -> Response:
        voice = self.get_object()
        upload = AudioUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        audio = upload.validated_data["file"]
        voice.reference.save(audio.name, audio, save=True)
        return Response(VoiceSerializer(voice, context=self.get_serializer_context()).data)
