"""Picture prompts: the template, and an OpenAI-compatible chat server faked on 127.0.0.1."""

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from media_engine import prompts
from media_engine.errors import MediaError

TEXTS = ["清晨的公园里，老人们在打太极。", "一杯温水可以唤醒肠胃。", "晚上十点前上床睡觉。"]
SCENES = [
    "Elderly people practicing tai chi in a misty park at dawn, soft golden light",
    "A glass of warm water on a wooden kitchen table, morning sunlight",
    "A cozy bedroom at night with a bedside lamp and a clock showing ten",
]


def chat_answer(content: str) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
    }


@dataclass
class FakeChat:
    """Each request gets the next (status, JSON body, delay) answer; the last one repeats."""

    answers: list[tuple[int, dict | str, float]] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    url: str = ""

    def llm(self, **extra) -> dict:
        return {
            "base_url": f"{self.url}/v1",
            "api_key": "sk-test",
            "model": "deepseek-v3",
            "timeout": 2,
            "retries": 2,
            "backoff": 0.01,
            **extra,
        }


@pytest.fixture
def chat() -> Iterator[FakeChat]:
    fake = FakeChat(answers=[(200, chat_answer(json.dumps(SCENES)), 0.0)])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            status, answer, delay = fake.answers[min(len(fake.requests), len(fake.answers)) - 1]
            time.sleep(delay)
            payload = (answer if isinstance(answer, str) else json.dumps(answer)).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.block_on_close = False
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield fake
    httpd.shutdown()
    httpd.server_close()


def build(chat: FakeChat, **llm_extra) -> prompts.BuiltPrompts:
    return prompts.build_prompts(
        TEXTS,
        prefix="warm watercolor, mxstyle",
        image_prompt="healthy elderly life",
        llm=chat.llm(**llm_extra),
    )


def assert_template_fallback(result: prompts.BuiltPrompts, reason: str) -> None:
    assert result.source == "template"
    assert reason in result.fallback_reason
    assert result.prompts == [
        prompts.template_prompt(
            prefix="warm watercolor, mxstyle", image_prompt="healthy elderly life", text=text
        )
        for text in TEXTS
    ]


def test_template_joins_prefix_topic_prompt_and_text() -> None:
    prompt = prompts.template_prompt(
        prefix="  watercolor,\n", image_prompt="old town  street", text="A\tsunny day.\n"
    )
    assert prompt == "watercolor, old town street, A sunny day."


def test_template_is_bounded_and_cut_at_a_word() -> None:
    prompt = prompts.template_prompt(prefix="style", image_prompt="topic", text="word " * 400, max_chars=100)
    assert len(prompt) <= 100 and prompt.startswith("style, topic, word") and prompt.endswith("word")
    assert prompts.template_prompt(prefix="", image_prompt="", text="一" * 1000, max_chars=50) == "一" * 50
    assert prompts.template_prompt(prefix="p", image_prompt="", text="  ") == "p"


def test_llm_prompts_get_the_topic_prefix(chat: FakeChat) -> None:
    result = build(chat)

    assert result.source == "llm" and result.fallback_reason == ""
    assert result.prompts == [f"warm watercolor, mxstyle, {scene}" for scene in SCENES]
    [request] = chat.requests
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-test"
    assert request["body"]["model"] == "deepseek-v3"
    user = request["body"]["messages"][-1]["content"]
    assert "exactly 3" in user and "healthy elderly life" in user and all(text in user for text in TEXTS)


def test_json_inside_a_code_fence_is_accepted(chat: FakeChat) -> None:
    chat.answers = [(200, chat_answer("```json\n" + json.dumps(SCENES, indent=2) + "\n```"), 0.0)]
    assert build(chat).source == "llm"


def test_array_inside_chatter_or_wrapped_in_an_object_is_accepted() -> None:
    chatty = f"Sure! Here they are: {json.dumps(SCENES)} Enjoy."
    assert prompts.parse_prompt_list(chatty, expected=3) == SCENES
    assert prompts.parse_prompt_list(json.dumps({"prompts": SCENES}), expected=3) == SCENES


def test_malformed_json_falls_back_to_the_template(chat: FakeChat) -> None:
    chat.answers = [(200, chat_answer('["a park at dawn", "a glass of water",'), 0.0)]
    assert_template_fallback(build(chat), "JSON")
    assert len(chat.requests) == 1  # a bad answer is not retried


def test_wrong_count_falls_back_to_the_template(chat: FakeChat) -> None:
    chat.answers = [(200, chat_answer(json.dumps(SCENES[:2])), 0.0)]
    assert_template_fallback(build(chat), "2 prompts for 3 segments")


def test_empty_prompt_falls_back(chat: FakeChat) -> None:
    chat.answers = [(200, chat_answer(json.dumps([SCENES[0], "  ", SCENES[2]])), 0.0)]
    assert_template_fallback(build(chat), "empty")


def test_5xx_is_retried_then_falls_back(chat: FakeChat) -> None:
    chat.answers = [(503, {"error": "overloaded"}, 0.0)]
    assert_template_fallback(build(chat, retries=3), "HTTP 503")
    assert len(chat.requests) == 3


def test_5xx_then_success_uses_the_llm(chat: FakeChat) -> None:
    chat.answers = [(502, {"error": "bad gateway"}, 0.0), (200, chat_answer(json.dumps(SCENES)), 0.0)]
    assert build(chat).source == "llm"
    assert len(chat.requests) == 2


def test_timeout_falls_back(chat: FakeChat) -> None:
    chat.answers = [(200, chat_answer(json.dumps(SCENES)), 1.5)]
    started = time.monotonic()
    assert_template_fallback(build(chat, timeout=0.3, retries=1), "did not answer within")
    assert time.monotonic() - started < 1.5


def test_unauthorised_falls_back_without_retrying(chat: FakeChat) -> None:
    chat.answers = [(401, {"error": {"message": "Incorrect API key provided"}}, 0.0)]
    assert_template_fallback(build(chat), "HTTP 401")
    assert len(chat.requests) == 1


def test_answer_without_choices_falls_back(chat: FakeChat) -> None:
    chat.answers = [(200, {"error": "nope"}, 0.0)]
    assert_template_fallback(build(chat), "choices")


def test_no_llm_configured_uses_the_template_without_a_reason() -> None:
    result = prompts.build_prompts(TEXTS, prefix="p", image_prompt="i", llm=None)
    assert result.source == "template" and result.fallback_reason == ""
    prompt_list, _source, _reason, keywords = result  # a plain tuple too
    assert len(keywords) == len(TEXTS)
    assert prompt_list[0] == f"p, i, {TEXTS[0]}"


def test_chat_prompts_raises_media_error(chat: FakeChat) -> None:
    chat.answers = [(200, chat_answer("I cannot help with that."), 0.0)]
    with pytest.raises(MediaError, match="not JSON") as caught:
        prompts.chat_prompts(TEXTS, base_url=chat.url, api_key="k", model="m", style="s", timeout=2)
    assert caught.value.permanent
    assert prompts.chat_prompts([], base_url=chat.url, api_key="k", model="m", style="s") == []


def test_the_same_llm_call_gives_footage_search_terms(chat: FakeChat) -> None:
    answer = [
        {"prompt": scene, "search": ["Tai Chi", "park", "tai chi"]}
        if number == 0
        else {"prompt": scene, "search": []}
        for number, scene in enumerate(SCENES)
    ]
    chat.answers = [(200, chat_answer(json.dumps(answer)), 0.0)]
    result = build(chat)

    assert result.source == "llm" and len(chat.requests) == 1
    assert result.prompts[0] == f"warm watercolor, mxstyle, {SCENES[0]}"
    assert result.keywords[0] == ["tai chi", "park"]
    # Where the model gave no terms, the segment's own text gives them (jieba for Chinese).
    assert result.keywords[1] and all(term in TEXTS[1] for term in result.keywords[1])


def test_without_a_chat_model_the_segment_text_gives_the_search_terms() -> None:
    result = prompts.build_prompts(
        ["The old fisherman walks along a quiet beach at sunrise."],
        prefix="",
        image_prompt="",
        llm=None,
        language="en",
    )
    assert result.source == "template"
    assert {"sunrise", "quiet beach"} <= set(result.keywords[0])
    chinese = prompts.build_prompts(
        ["清晨的海边，老渔夫沿着安静的沙滩散步。"], prefix="", image_prompt="", llm=None, language="zh-CN"
    )
    assert "渔夫" in chinese.keywords[0] and "沙滩" in chinese.keywords[0]
