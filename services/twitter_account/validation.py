"""Registration and profile rules, with Mastodon's error shape for registration (``details``)."""

from __future__ import annotations

import re
from typing import Any

import regex

from twitter_shared.errors import ValidationFailed

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_]{1,30}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MAX_EMAIL_LENGTH = 320
# Mastodon's limits: passwords 8 to 72 characters (bcrypt's input limit there), profile texts below.
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 72
MAX_DISPLAY_NAME = 30
MAX_NOTE = 500
TRUTHY = {"1", "true", "True", "on", "yes", True}


def grapheme_length(value: str) -> int:
    return len(regex.findall(r"\X", value))


def registration_errors(fields: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """Return Mastodon-style ``details``: field -> [{error, description}]; empty when the fields are valid."""
    details: dict[str, list[dict[str, str]]] = {}

    def add(field: str, code: str, description: str) -> None:
        details.setdefault(field, []).append({"error": code, "description": description})

    username = fields.get("username")
    if not isinstance(username, str) or not username:
        add("username", "ERR_BLANK", "can't be blank")
    elif not USERNAME_PATTERN.match(username):
        add("username", "ERR_INVALID", "must contain only letters, numbers and underscores, at most 30")

    email = fields.get("email")
    if not isinstance(email, str) or not email:
        add("email", "ERR_BLANK", "can't be blank")
    elif len(email) > MAX_EMAIL_LENGTH or not EMAIL_PATTERN.match(email):
        add("email", "ERR_INVALID", "is not a valid e-mail address")

    password = fields.get("password")
    if not isinstance(password, str) or not password:
        add("password", "ERR_BLANK", "can't be blank")
    elif len(password) < MIN_PASSWORD_LENGTH:
        add("password", "ERR_TOO_SHORT", f"is too short (minimum is {MIN_PASSWORD_LENGTH} characters)")
    elif len(password) > MAX_PASSWORD_LENGTH:
        add("password", "ERR_TOO_LONG", f"is too long (maximum is {MAX_PASSWORD_LENGTH} characters)")

    if fields.get("agreement") not in TRUTHY:
        add("agreement", "ERR_ACCEPTED", "must be accepted")

    locale = fields.get("locale")
    if locale is not None and (not isinstance(locale, str) or not re.fullmatch(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?", locale)):
        add("locale", "ERR_INVALID", "is not a supported locale")
    return details


def validation_failed(details: dict[str, list[dict[str, str]]]) -> ValidationFailed:
    summary = ", ".join(f"{field.capitalize()} {errors[0]['description']}" for field, errors in details.items())
    return ValidationFailed(f"Validation failed: {summary}", details=details)


def check_profile(fields: dict[str, Any]) -> dict[str, str]:
    """Validate ``display_name`` and ``note`` updates; return only the fields present."""
    changes: dict[str, str] = {}
    for field, limit in (("display_name", MAX_DISPLAY_NAME), ("note", MAX_NOTE)):
        if field not in fields:
            continue
        value = fields[field]
        if not isinstance(value, str):
            raise ValidationFailed(f"Validation failed: {field} must be text")
        if grapheme_length(value) > limit:
            raise ValidationFailed(f"Validation failed: {field} is too long (maximum is {limit} characters)")
        changes[field] = value
    return changes
