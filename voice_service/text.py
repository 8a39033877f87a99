"""Text hygiene before synthesis: sentence chunks that are safe and quick to speak.

Chatterbox speaks a canned sentence for empty text and cannot pass ~40 seconds of
speech (1000 speech tokens) in one `generate()` call, so text is split into
sentences, long sentences are split again at commas or spaces, and chunks with
nothing to pronounce are dropped. The first chunk is kept short so the first
audio byte comes early.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])[\"')\]]*\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")
_SPEAKABLE = re.compile(r"\w")


def split_text(text: str, *, first_chunk_chars: int = 120, max_chunk_chars: int = 300) -> list[str]:
    """Split `text` into chunks to synthesise one after another.

    Args:
        text: The text to speak.
        first_chunk_chars: Longest first chunk, in characters.
        max_chunk_chars: Longest later chunk, in characters.

    Returns:
        Chunks in speaking order; empty when nothing in `text` can be pronounced.
    """
    normalized = " ".join(text.split())
    chunks: list[str] = []
    for sentence in _SENTENCE_END.split(normalized):
        limit = first_chunk_chars if not chunks else max_chunk_chars
        for piece in _split_long(sentence, limit, max_chunk_chars):
            if _SPEAKABLE.search(piece):
                chunks.append(piece)
    return chunks


def _split_long(sentence: str, first_limit: int, limit: int) -> list[str]:
    """Split one sentence at clause ends, then at spaces, so no piece passes its limit."""
    sentence = sentence.strip()
    if len(sentence) <= first_limit:
        return [sentence] if sentence else []
    pieces: list[str] = []
    current = ""
    for clause in _CLAUSE_END.split(sentence):
        for word in clause.split(" "):
            cap = first_limit if not pieces else limit
            candidate = f"{current} {word}" if current else word
            if len(candidate) <= cap:
                current = candidate
                continue
            if current:
                pieces.append(current)
            # A single word longer than the limit is cut; it cannot be spoken whole anyway.
            while len(word) > (cut := first_limit if not pieces else limit):
                pieces.append(word[:cut])
                word = word[cut:]
            current = word
        # Prefer to end a piece at a clause boundary once it is reasonably long.
        if current and len(current) >= (first_limit if not pieces else limit) // 2:
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces
