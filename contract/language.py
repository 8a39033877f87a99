"""BCP-47 language tags, validated against the IANA registry (via langcodes)."""

from __future__ import annotations

from typing import Annotated

import langcodes
from pydantic import AfterValidator

MAX_LANGUAGE_TAG = 35


def validate_language(tag: str) -> str:
    """Return `tag` in canonical case ("EN-us" -> "en-US").

    Raises:
        ValueError: `tag` is not a well-formed, registered BCP-47 tag.
    """
    if not tag or len(tag) > MAX_LANGUAGE_TAG or "_" in tag or not tag.isascii():
        raise ValueError(f"{tag[:40]!r} is not a BCP-47 language tag (use hyphens, e.g. 'en-US')")
    if not langcodes.tag_is_valid(tag):
        raise ValueError(f"{tag!r} is not a BCP-47 language tag")
    return langcodes.standardize_tag(tag, macro=False)


LanguageTag = Annotated[str, AfterValidator(validate_language)]
"""A BCP-47 tag, validated and put in canonical case."""
