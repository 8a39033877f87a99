"""Text hygiene before synthesis: sentence chunks, no empty chunks, length limits."""

from __future__ import annotations

import pytest

from voice_service.text import split_text

pytestmark = pytest.mark.unit


def test_sentences_become_chunks_in_order() -> None:
    assert split_text("Hello there. How are you today?  I am fine!") == [
        "Hello there.",
        "How are you today?",
        "I am fine!",
    ]


@pytest.mark.parametrize("text", ["", "   ", "\n\t ", "...", "!? —", "… ."])
def test_nothing_to_pronounce_gives_no_chunks(text: str) -> None:
    assert split_text(text) == []


def test_whitespace_is_normalised_and_empty_sentences_dropped() -> None:
    assert split_text("  One.\n\n  . Two!  ") == ["One.", "Two!"]


def test_long_sentence_is_split_under_the_limits_with_a_short_first_chunk() -> None:
    text = "This sentence runs on, clause after clause, and never seems to end, " * 30
    chunks = split_text(text, first_chunk_chars=60, max_chunk_chars=200)
    assert len(chunks) > 5
    assert len(chunks[0]) <= 60
    assert all(0 < len(c) <= 200 for c in chunks)
    assert " ".join(chunks).split() == text.split()


def test_a_word_longer_than_the_limit_is_cut() -> None:
    chunks = split_text("x" * 700, first_chunk_chars=100, max_chunk_chars=300)
    assert [len(c) for c in chunks] == [100, 300, 300]


def test_short_first_sentence_is_not_merged_with_the_next() -> None:
    chunks = split_text("Hi! " + "Then a much longer second sentence follows here. " * 3)
    assert chunks[0] == "Hi!"
