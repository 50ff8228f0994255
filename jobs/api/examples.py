"""Example requests and responses for the OpenAPI document of the jobs API."""

EXECUTION_EXAMPLE = {
    "id": 41,
    "job": 123,
    "status": "SUCCESS",
    "detail": "Done (fallbacks: espeak-ng voice)",
    "progress": 100,
    "current_step": "cover",
    "worker_host": "gpu-1",
    "retry_count": 0,
    "attempt": 1,
    "retry_at": None,
    "error_kind": "",
    "cancel_requested": False,
    "created_at": "2025-01-01T12:00:00Z",
    "started_at": "2025-01-01T12:00:02Z",
    "finished_at": "2025-01-01T12:01:30Z",
    "duration_s": 88.0,
    "heartbeat_at": "2025-01-01T12:01:30Z",
    "error": "",
    "steps": {
        "narration": {
            "status": "done",
            "started_at": "2025-01-01T12:00:02Z",
            "finished_at": "2025-01-01T12:00:20Z",
            "duration_s": 18.1,
            "error": None,
        },
        "compose": {
            "status": "done",
            "started_at": "2025-01-01T12:00:25Z",
            "finished_at": "2025-01-01T12:01:25Z",
            "duration_s": 60.2,
            "error": None,
        },
    },
    "urls": {
        "video": "/files/ImpvYnMvMTIzLzQxL3ZpZGVvLm1wNCI:1tX...",
        "cover": "/files/ImpvYnMvMTIzLzQxL2NvdmVyLmpwZyI:1tX...",
    },
    "eta_s": None,
}
PENDING_EXAMPLE = {
    **EXECUTION_EXAMPLE,
    "id": 42,
    "status": "PENDING",
    "detail": "Waiting for a worker",
    "progress": 0,
    "current_step": "",
    "worker_host": "",
    "attempt": 0,
    "started_at": None,
    "finished_at": None,
    "duration_s": None,
    "heartbeat_at": None,
    "steps": {},
    "urls": {},
}
PICTURE_URL = "/files/ImpvYnMvMTIzL3BpY3R1cmVzLzAwMC5wbmci:1tX..."
SPLIT_EXAMPLE = {
    "id": 901,
    "index": 0,
    "start_ms": 0,
    "end_ms": 5200,
    "duration_ms": 5200,
    "text": "今天天气很好。",
    "sentences": ["今天天气很好。"],
    "prompt": "warm photograph, a sunny park",
    "images": [
        {"key": "jobs/123/pictures/000-card-1a2b.png", "url": PICTURE_URL, "seed": None, "source": "card"}
    ],
    "selected": "jobs/123/pictures/000-card-1a2b.png",
    "selected_url": PICTURE_URL,
    "clip": None,
    "updated_at": "2025-01-01T12:00:30Z",
}
STORYBOARD_EXAMPLE = [
    {
        **SPLIT_EXAMPLE,
        "end_ms": 2600,
        "duration_ms": 2600,
        "text": "今天天气很好。",
        "sentences": ["今天天气很好。"],
    },
    {
        **SPLIT_EXAMPLE,
        "id": 905,
        "index": 1,
        "start_ms": 2600,
        "duration_ms": 2600,
        "text": "我们去公园散步。",
        "sentences": ["我们去公园散步。"],
        "prompt": "warm photograph, 我们去公园散步。",
        "selected": "",
        "selected_url": "",
    },
]
RESPLIT_EXAMPLE = {"kept": [0], "dropped": [1, 2], "splits": STORYBOARD_EXAMPLE}
JOB_LIST_EXAMPLE = {
    "id": 123,
    "title": "测试视频",
    "status": "SUCCESS",
    "status_detail": "Done",
    "progress": 100,
    "latest_execution": 41,
    "language": 1,
    "voice": 2,
    "topic": 4,
    "account": 3,
    "orientation": "horizontal",
    "speech_speed": 0.9,
    "runorder": 0,
    "team": "health",
    "owner": "6f1c1b8e-4c1a-4d0e-9d1e-2b8f0c6a1e11",
    "created_at": "2025-01-01T12:00:00Z",
    "updated_at": "2025-01-01T12:30:00Z",
}
JOB_DETAIL_EXAMPLE = {
    **JOB_LIST_EXAMPLE,
    "language": {"id": 1, "code": "zh-CN", "name": "中文", "platform": "espeak"},
    "voice": {"id": 2, "name": "cmn", "language": 1, "reference_url": ""},
    "topic": {
        "id": 4,
        "name": "Health tips",
        "prompt_gen_image": "a calm sunlit kitchen",
        "lora_name": "",
        "real_clip_ratio": 0.25,
    },
    "account": {"id": 3, "username": "health-tips", "platform": "youtube"},
    "latest_execution": EXECUTION_EXAMPLE,
    "content": "今天天气很好。我们去公园散步。",
    "description": "A walk in the park.",
    "publish_title": "公园散步",
    "extra": {"title_text": "公园散步", "real_clip_ratio": 0.3},
    "splits": [SPLIT_EXAMPLE],
    "deleted": False,
}
JOB_WRITE_EXAMPLE = {
    "title": "测试视频",
    "content": "今天天气很好。我们去公园散步。",
    "description": "A walk in the park.",
    "publish_title": "公园散步",
    "language": 1,
    "voice": 2,
    "topic": 4,
    "account": 3,
    "speech_speed": 0.9,
    "orientation": "horizontal",
    "extra": {"title_text": "公园散步", "real_clip_ratio": 0.3},
}
JOB_INVALID_EXAMPLE = {
    "title": ["Title is empty."],
    "speech_speed": ["Speech speed 3.0 is outside 0.5-2.0."],
    "language": ["Language 7 does not exist or is not yours."],
    "extra": {"real_clip_ratio": ["Must be a number from 0 to 1."]},
}
CLIP_EXAMPLE = {
    "id": 12,
    "title": "Sea at dawn",
    "url": "/files/ImNsaXBzLzFhMmIzYy5tcDQi:1tX...",
    "duration_ms": 8000,
    "width": 1920,
    "height": 1080,
    "tags": "landscape,sea",
    "source": "own footage",
    "licence": "CC0",
    "team": "health",
    "owner": "6f1c1b8e-4c1a-4d0e-9d1e-2b8f0c6a1e11",
    "shared": False,
    "created_at": "2025-01-01T12:00:00Z",
    "updated_at": "2025-01-01T12:00:00Z",
}
MUSIC_EXAMPLE = {
    "key": "music/6f1c1b8e4c1a4d0e9d1e2b8f0c6a1e11/3f2a9c.mp3",
    "size": 2894211,
    "url": "/files/Im11c2ljLzZmMWMxYjhlNGMxYTRkMGU5ZDFlMmI4ZjBjNmExZTExLzNmMmE5Yy5tcDMi:1tX...",
}
JOB_BATCH_EXAMPLE = {
    "render": True,
    "jobs": [
        {"title": "公园散步", "content": "今天天气很好。我们去公园散步。", "language": 1, "voice": 2},
        {"title": "Morning run", "content": "We run by the river.", "orientation": "vertical"},
    ],
}
JOB_BATCH_INVALID_EXAMPLE = {
    "jobs": {
        "1": {"title": ["Title is empty."]},
        "3": {"speech_speed": ["Speech speed 3.0 is outside 0.5-2.0."]},
    }
}
WEBHOOK_EXAMPLE = {
    "id": 7,
    "url": "https://hooks.example.com/batchvideo",
    "description": "Publishing pipeline",
    "events": ["render.done", "render.failed"],
    "is_active": True,
    "secret_hint": "whsec_3kQz…",
    "created_at": "2025-01-01T12:00:00Z",
    "updated_at": "2025-01-01T12:00:00Z",
}
WEBHOOK_CREATED_EXAMPLE = {**WEBHOOK_EXAMPLE, "secret": "whsec_3kQzV0a1Xb9u2e7TQm5oLr8yFh4NcP6sWd1JgK0tYbE"}
WEBHOOK_EVENT_EXAMPLE = {
    "id": "5b0e3c1e-8a43-4f4b-9a8e-0d6f3a2c1b7e",
    "type": "render.done",
    "created_at": "2025-01-01T12:01:30Z",
    "data": {
        "job": {"id": 123, "title": "测试视频"},
        "execution": {
            "id": 41,
            "status": "SUCCESS",
            "detail": "Done",
            "error": "",
            "error_kind": "",
            "attempt": 1,
            "started_at": "2025-01-01T12:00:02Z",
            "finished_at": "2025-01-01T12:01:30Z",
            "results": ["cover", "subtitles", "video"],
        },
    },
}
WEBHOOK_DELIVERY_EXAMPLE = {
    "id": 301,
    "webhook": 7,
    "event_id": WEBHOOK_EVENT_EXAMPLE["id"],
    "kind": "render.done",
    "payload": WEBHOOK_EVENT_EXAMPLE,
    "status": "delivered",
    "attempts": 2,
    "next_attempt_at": None,
    "delivered_at": "2025-01-01T12:02:01Z",
    "created_at": "2025-01-01T12:01:30Z",
    "attempt_log": [
        {"status_code": 200, "error": "", "duration_ms": 84, "created_at": "2025-01-01T12:02:01Z"},
        {
            "status_code": 500,
            "error": "the receiver answered 500",
            "duration_ms": 61,
            "created_at": "2025-01-01T12:01:30Z",
        },
    ],
}
