from accounts.api.docs import owned_crud_docs
from accounts.api.ownership import OwnedModelViewSet

from ..models import Topic
from .serializers import TopicSerializer

TOPIC_EXAMPLE = {
    "id": 4,
    "name": "Health tips",
    "prompt_gen_image": "a calm sunlit kitchen, fresh vegetables",
    "prompt_cover_image": "a smiling elderly couple walking in a park",
    "prompt_image_prefix": "warm photograph, soft light,",
    "prompt_l4": "no text",
    "lora_name": "warm-photo",
    "lora_weight": 80,
    "palette": ["#2E7D32", "#A5D6A7", "#F1F8E9"],
    "real_clip_ratio": 0.25,
    "clip_tags": "nature,park",
    "extra": {},
    "team": None,
    "owner": None,
    "shared": True,
    "created_at": "2025-01-01T12:00:00Z",
    "updated_at": "2025-01-01T12:00:00Z",
}


@owned_crud_docs(
    noun="topic",
    plural="topics",
    serializer=TopicSerializer,
    tag="topics",
    example=TOPIC_EXAMPLE,
    write_example={
        "name": "Nostalgia",
        "prompt_gen_image": "a 1980s town scene, bicycles",
        "palette": ["#8D6E63", "#FFCC80"],
        "real_clip_ratio": 0.3,
        "clip_tags": "landscape,old",
    },
    invalid_example={
        "real_clip_ratio": ["Ensure this value is less than or equal to 1.0."],
        "palette": {"0": ["Must be a colour of the form #RRGGBB."]},
    },
)
class TopicViewSet(OwnedModelViewSet):
    """Visual styles: image prompts, LoRA, palette and the share of real clips."""

    queryset = Topic.objects.all()
    serializer_class = TopicSerializer
