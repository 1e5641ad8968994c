"""Status text rules: Mastodon's length count, and the mentions a text contains.

Mastodon counts a status in grapheme clusters after two substitutions: every
http(s) URL counts as 23 characters whatever its length, and a mention
``@user@domain`` counts only its ``@user`` part. The spoiler text counts
towards the same limit, as in Mastodon.
"""

from __future__ import annotations

from dataclasses import dataclass

import regex

from twitter_shared.errors import ValidationFailed

MAX_CHARACTERS = 500
CHARACTERS_RESERVED_PER_URL = 23
MAX_USERNAME_LENGTH = 30

# A URL ends before trailing punctuation, so "see https://example.com." counts the dot apart.
URL_PATTERN = regex.compile(r"""https?://[^\s<>"]*[^\s<>".,:;!?'")\]]""", regex.IGNORECASE)
# The character before a mention must not be a word character or a slash (e-mail addresses and
# URL paths are not mentions); the optional second part is a domain.
MENTION_PATTERN = regex.compile(r"(?<![\w/@])@([A-Za-z0-9_]+)(?:@([\w-]+(?:\.[\w-]+)*(?::\d+)?))?")
GRAPHEME = regex.compile(r"\X")
# NUL and lone surrogates cannot be stored in PostgreSQL text or encoded as UTF-8.
INVALID_CHARACTERS = regex.compile(r"[\x00\ud800-\udfff]")

BLANK_MESSAGE = "Validation failed: Text can't be blank"
TOO_LONG_MESSAGE = f"Validation failed: Text character limit of {MAX_CHARACTERS} exceeded"
INVALID_CHARACTERS_MESSAGE = "Validation failed: Text contains invalid characters (NUL or a lone surrogate)"


@dataclass(frozen=True)
class MentionedName:
    username: str
    domain: str | None


def countable_length(text: str) -> int:
    """Return the length Mastodon checks against the limit, in grapheme clusters."""
    placeholder = "x" * CHARACTERS_RESERVED_PER_URL
    without_urls = URL_PATTERN.sub(placeholder, text)
    local_mentions = MENTION_PATTERN.sub(lambda match: "@" + match.group(1), without_urls)
    return len(GRAPHEME.findall(local_mentions))


def check_text(text: object, *, spoiler_text: str = "") -> str:
    """Return ``text`` if it may be posted; raise ``ValidationFailed`` saying why it may not."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationFailed(BLANK_MESSAGE)
    if INVALID_CHARACTERS.search(text) or INVALID_CHARACTERS.search(spoiler_text):
        raise ValidationFailed(INVALID_CHARACTERS_MESSAGE)
    if countable_length(spoiler_text + text) > MAX_CHARACTERS:
        raise ValidationFailed(TOO_LONG_MESSAGE)
    return text


def mentioned_names(text: str, *, local_domain: str) -> list[str]:
    """Return the usernames of local mentions, in order of first appearance, without repeats.

    A mention with a domain is local when the domain is ours; any other domain is a
    remote account, which this server does not federate with, so it mentions nobody.
    """
    without_urls = URL_PATTERN.sub(" ", text)
    names: dict[str, str] = {}
    for match in MENTION_PATTERN.finditer(without_urls):
        username, domain = match.group(1), match.group(2)
        if len(username) > MAX_USERNAME_LENGTH:
            continue
        if domain is not None and domain.lower() != local_domain.lower():
            continue
        names.setdefault(username.lower(), username)
    return list(names.values())
