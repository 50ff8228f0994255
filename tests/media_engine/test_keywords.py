"""Footage search terms from a segment's text: YAKE for Latin scripts, jieba for Chinese, offline."""

import socket

import pytest

from media_engine.keywords import extract_keywords


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("keyword extraction tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_latin_scripts_use_yake_with_their_stop_words(no_network):
    terms = extract_keywords("El viejo pescador camina por la playa tranquila al amanecer.", language="es")
    assert "amanecer" in terms and not {"el", "por", "la", "al"} & set(terms)
    english = extract_keywords("A small brown dog runs through the autumn forest.", language="en-GB")
    assert any("forest" in term for term in english) and "the" not in english


def test_chinese_uses_jieba_nouns(no_network):
    terms = extract_keywords("清晨的海边，老渔夫沿着安静的沙滩散步。", language="zh-CN")
    assert {"渔夫", "沙滩"} <= set(terms) and len(terms) <= 5
    # Without a language code the script decides.
    assert "渔夫" in extract_keywords("老渔夫在海边")


def test_empty_text_has_no_terms():
    assert extract_keywords("  ", language="en") == []
