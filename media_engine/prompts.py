"""Picture prompts and footage search terms for the segments: from the topic's template and a
keyword extractor, or from an OpenAI-compatible chat model when one is configured (one call writes
both), falling back to the template and the extractor whenever the model fails."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import NamedTuple

import requests

from .errors import MediaError, with_retries
from .keywords import MAX_KEYWORDS, extract_keywords

logger = logging.getLogger(__name__)

# Flux reads 512 T5 tokens (and CLIP only 77); a few hundred characters is plenty.
MAX_PROMPT_CHARS = 600
FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL | re.IGNORECASE)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")

SYSTEM_MESSAGE = (
    "You write prompts for a text-to-image model (FLUX). For each numbered narration segment, "
    "write one English picture prompt of 30-60 words describing a single concrete scene: subject, "
    "setting, lighting, composition. No text, captions or logos in the picture. "
    "Also give 2-5 short English search terms (one or two words each) that would find stock video "
    "footage of that scene. Reply with only a JSON array, one object per segment, in order: "
    '[{"prompt": "...", "search": ["...", "..."]}, ...]'
)


class Scene(NamedTuple):
    prompt: str
    search: list[str]  # footage search terms; empty when the model gave none


class BuiltPrompts(NamedTuple):
    prompts: list[str]
    source: str  # "llm" or "template"
    fallback_reason: str  # why the LLM was not used, "" when it was or none is configured
    keywords: list[list[str]]  # per segment: the model's search terms, else the extractor's


def template_prompt(*, prefix: str, image_prompt: str, text: str, max_chars: int = MAX_PROMPT_CHARS) -> str:
    """`prefix, image prompt, segment text`, whitespace-cleaned; the segment text is cut
    (at a word boundary where there is one) so that the whole fits in `max_chars`."""
    # Stray separators at the edges of the topic fields would give ",," in the joined prompt.
    parts = (_clean(prefix).strip(" ,;"), _clean(image_prompt).strip(" ,;"))
    head = ", ".join(part for part in parts if part)
    body = _clean(text)
    if not body:
        return head[:max_chars]
    room = max_chars - len(head) - (2 if head else 0)
    if room <= 0:
        return head[:max_chars]
    if len(body) > room:
        cut = body[:room]
        space = cut.rfind(" ")
        body = (cut[:space] if space > room // 2 else cut).rstrip(" ,;")
    return f"{head}, {body}" if head else body


def chat_prompts(
    texts: Sequence[str],
    *,
    base_url: str,
    api_key: str,
    model: str,
    style: str,
    timeout: float = 60,
    retries: int = 2,
    backoff: float = 1.0,
) -> list[Scene]:
    """One English picture prompt and its footage search terms per segment from one
    `/chat/completions` call.

    `retries` is the number of attempts in all for transient failures (timeouts, connection
    errors, 429, 5xx), `backoff` seconds apart, doubling. An answer that is not a JSON array
    of `len(texts)` non-empty strings is a permanent MediaError, so the caller falls back at once.
    """
    if not texts:
        return []
    url = base_url.rstrip("/") + "/chat/completions"
    segments = "\n".join(f"{number}. {_clean(text)}" for number, text in enumerate(texts, start=1))
    user_message = (
        f"Visual style for every prompt: {_clean(style) or 'photorealistic'}\n"
        f"There are {len(texts)} segments; answer with a JSON array of exactly {len(texts)} objects.\n\n"
        f"{segments}"
    )
    payload = {
        "model": model,
        "messages": [
            {"role": "system", "content": SYSTEM_MESSAGE},
            {"role": "user", "content": user_message},
        ],
        "temperature": 0.7,
    }
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    answer = with_retries(
        lambda: _post_json(url, payload, headers, timeout),
        attempts=max(1, retries),
        backoff_s=backoff,
        service="the LLM",
    )
    return parse_scenes(_message_content(answer), expected=len(texts))


def build_prompts(
    texts: Sequence[str],
    *,
    prefix: str,
    image_prompt: str,
    llm: dict | None,
    language: str = "",
) -> BuiltPrompts:
    """Prompts and footage search terms for `texts` and where they came from.

    With `llm` (keys: base_url, api_key, model; optional style, timeout, retries, backoff) the
    chat model writes the scenes and the topic's prefix (its style and LoRA trigger words)
    is put in front of each; the topic's image prompt guides the model's style. Any LLM
    failure falls back to template prompts and is logged and returned as the reason. Search terms
    the model does not give come from the segment's text (`keywords.extract_keywords`, `language`).
    """
    template = [template_prompt(prefix=prefix, image_prompt=image_prompt, text=text) for text in texts]
    extracted = [extract_keywords(text, language=language) for text in texts]
    if not llm or not llm.get("base_url") or not llm.get("model"):
        return BuiltPrompts(template, "template", "", extracted)
    style = ", ".join(part for part in (_clean(image_prompt), _clean(llm.get("style", ""))) if part)
    try:
        scenes = chat_prompts(
            texts,
            base_url=llm["base_url"],
            api_key=llm.get("api_key", ""),
            model=llm["model"],
            style=style,
            timeout=float(llm.get("timeout", 60)),
            retries=int(llm.get("retries", 2)),
            backoff=float(llm.get("backoff", 1.0)),
        )
    except MediaError as error:
        logger.warning("LLM prompts failed, using the topic template: %s", error)
        return BuiltPrompts(template, "template", str(error), extracted)
    styled = [template_prompt(prefix=prefix, image_prompt="", text=scene.prompt) for scene in scenes]
    keywords = [scene.search or own for scene, own in zip(scenes, extracted)]
    return BuiltPrompts(styled, "llm", "", keywords)


def parse_prompt_list(content: str, *, expected: int) -> list[str]:
    """The prompts of a chat answer (see parse_scenes)."""
    return [scene.prompt for scene in parse_scenes(content, expected=expected)]


def parse_scenes(content: str, *, expected: int) -> list[Scene]:
    """The JSON array in a chat answer, tolerating a ```json fence or a {"prompts": [...]} wrapper.
    An item is an object {"prompt", "search"} or (as models answered before search terms were asked
    for) a plain prompt string."""
    fenced = FENCE.match(content)
    raw = fenced.group(1) if fenced else content.strip()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        # Some models add a sentence around the array: try the outermost brackets.
        start, end = raw.find("["), raw.rfind("]")
        if start < 0 or end <= start:
            raise MediaError(f"the LLM answer is not JSON: {content[:120]!r}") from None
        try:
            data = json.loads(raw[start : end + 1])
        except json.JSONDecodeError as error:
            raise MediaError(f"the LLM answer is not valid JSON ({error}): {content[:120]!r}") from None
    if isinstance(data, dict) and isinstance(data.get("prompts"), list):
        data = data["prompts"]
    if not isinstance(data, list):
        raise MediaError(f"the LLM answered a {type(data).__name__}, not a JSON array of prompts")
    if len(data) != expected:
        raise MediaError(f"the LLM returned {len(data)} prompts for {expected} segments")
    scenes = [_scene(item) for item in data]
    if not all(scene.prompt for scene in scenes):
        raise MediaError("the LLM returned an empty or non-text prompt")
    return scenes


def _scene(item: object) -> Scene:
    if isinstance(item, str):
        return Scene(_clean(item)[:MAX_PROMPT_CHARS], [])
    if not isinstance(item, dict) or not isinstance(item.get("prompt"), str):
        return Scene("", [])
    search = item.get("search") if isinstance(item.get("search"), list) else []
    terms: list[str] = []
    for term in search:
        term = _clean(term).lower()[:60] if isinstance(term, str) else ""
        if term and term not in terms:
            terms.append(term)
    return Scene(_clean(item["prompt"])[:MAX_PROMPT_CHARS], terms[:MAX_KEYWORDS])


def _post_json(url: str, payload: dict, headers: dict, timeout: float) -> dict:
    try:
        response = requests.post(url, json=payload, headers=headers, timeout=timeout)
    except requests.Timeout as error:
        raise MediaError(f"the LLM did not answer within {timeout:.0f} s", permanent=False) from error
    except requests.ConnectionError as error:
        raise MediaError(f"cannot reach the LLM at {url}: {error}", permanent=False) from error
    if response.status_code == 429 or response.status_code >= 500:
        raise MediaError(f"the LLM is unavailable (HTTP {response.status_code})", permanent=False)
    if response.status_code >= 400:
        raise MediaError(f"the LLM rejected the request (HTTP {response.status_code}): {response.text[:200]}")
    try:
        return response.json()
    except ValueError as error:
        raise MediaError(f"the LLM server answered non-JSON: {response.text[:120]!r}") from error


def _message_content(answer: dict) -> str:
    try:
        content = answer["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as error:
        raise MediaError(f"the LLM answer has no choices[0].message.content: {str(answer)[:200]}") from error
    if not isinstance(content, str):
        raise MediaError("the LLM message content is not text")
    return content


def _clean(text: str) -> str:
    return " ".join(CONTROL.sub(" ", text or "").split())
