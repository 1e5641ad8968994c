"""The gateway's kept renderings of accounts and status content are never out of date, and stay bounded.

``account_entity`` keeps each account rendered without its post stats, keyed by
the record. ``status_entity`` keeps the strings made from a status's unchanging
fields (its HTML content, URLs and time), used while its text, author and mentions match.
Every test here first renders something so that it is kept,
then changes one input and checks the next rendering against one made with an
empty memo, so a stale kept value would show.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from twitter_gateway import render
from twitter_gateway.render import account_entity, status_content, status_entity, text_to_html

BASE = "https://social.example"
ALICE: dict[str, Any] = {
    "id": "1",
    "username": "alice",
    "display_name": "Alice",
    "note": "likes tea",
    "locale": "en",
    "email": "alice@example.org",
    "followers_count": 3,
    "following_count": 4,
    "created_at": "2026-12-04T20:50:15.123456+00:00",
}
BOB: dict[str, Any] = {**ALICE, "id": "2", "username": "bob", "display_name": "Bob", "email": "bob@example.org"}
STATUS: dict[str, Any] = {
    "id": "100",
    "account_id": "1",
    "text": "Hi @bob, see https://example.org/a",
    "mentions": [{"id": "2", "username": "bob"}],
    "created_at": "2026-12-04T20:50:15.123Z",
}


@pytest.fixture(autouse=True)
def _empty_memos(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with empty memos and leaves the module's own memos as they were."""
    monkeypatch.setattr(render, "_ACCOUNTS_WITHOUT_STATS", {})
    monkeypatch.setattr(render, "_STATUS_STRINGS", {})
    monkeypatch.setattr(render, "_kept_string_chars", [0])
    yield


def status_afresh(status: dict[str, Any], accounts: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Render ``status`` with empty status memos, as the first rendering ever would."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(render, "_STATUS_STRINGS", {})
        return status_entity(status, accounts, base_url=BASE)


def rendered_afresh(account: dict[str, Any], stats: dict[str, Any] | None, **options: Any) -> dict[str, Any]:
    """Render ``account`` with an empty memo, as the first rendering ever would."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(render, "_ACCOUNTS_WITHOUT_STATS", {})
        return account_entity(account, stats, **options)


class TestAccountEntity:
    """``account_entity`` with a memo of renderings."""

    @pytest.mark.parametrize("with_source", [False, True], ids=["without-source", "with-source"])
    @pytest.mark.parametrize(
        ("change", "expected"),
        [
            ({"display_name": "Alice B."}, {"display_name": "Alice B."}),
            ({"note": "likes coffee"}, {"note": "<p>likes coffee</p>"}),
            ({"note": ""}, {"note": ""}),
            ({"followers_count": 30}, {"followers_count": 30}),
            ({"following_count": 40}, {"following_count": 40}),
            ({"created_at": "2025-01-02T03:04:05.000001+00:00"}, {"created_at": "2025-01-02T00:00:00.000Z"}),
            ({"username": "alicia"}, {"username": "alicia", "acct": "alicia", "url": f"{BASE}/@alicia"}),
        ],
        ids=["display_name", "note", "note-cleared", "followers_count", "following_count", "created_at", "username"],
    )
    def test_changed_record_renders_anew(self, change: dict[str, Any], expected: dict[str, Any], with_source: bool) -> None:
        kept = account_entity(ALICE, None, base_url=BASE, with_source=with_source)
        changed = {**ALICE, **change}

        entity = account_entity(changed, None, base_url=BASE, with_source=with_source)

        assert entity == rendered_afresh(changed, None, base_url=BASE, with_source=with_source)
        assert {name: entity[name] for name in expected} == expected
        assert entity != kept

    def test_changed_note_and_locale_show_in_source(self) -> None:
        account_entity(ALICE, None, base_url=BASE, with_source=True)
        changed = {**ALICE, "note": "likes coffee", "locale": "de"}

        entity = account_entity(changed, None, base_url=BASE, with_source=True)

        assert (entity["source"]["note"], entity["source"]["language"]) == ("likes coffee", "de")

    def test_stats_are_applied_on_each_call(self) -> None:
        first = account_entity(ALICE, {"statuses_count": 5, "last_status_at": "2026-12-04"}, base_url=BASE)
        second = account_entity(ALICE, {"statuses_count": 6, "last_status_at": "2026-12-05"}, base_url=BASE)
        without = account_entity(ALICE, None, base_url=BASE)
        empty = account_entity(ALICE, {}, base_url=BASE)

        assert (first["statuses_count"], first["last_status_at"]) == (5, "2026-12-04")
        assert (second["statuses_count"], second["last_status_at"]) == (6, "2026-12-05")
        assert (without["statuses_count"], without["last_status_at"]) == (0, None)
        assert (empty["statuses_count"], empty["last_status_at"]) == (0, None)
        assert second == rendered_afresh(ALICE, {"statuses_count": 6, "last_status_at": "2026-12-05"}, base_url=BASE)

    def test_each_call_returns_a_fresh_dict_and_source(self) -> None:
        first = account_entity(ALICE, None, base_url=BASE, with_source=True)
        first["display_name"] = "changed by a caller"
        first["statuses_count"] = 99
        first["source"]["note"] = "changed by a caller"
        first["source"]["privacy"] = "private"
        del first["source"]["language"]

        second = account_entity(ALICE, None, base_url=BASE, with_source=True)

        assert second is not first
        assert second["source"] is not first["source"]
        assert second == rendered_afresh(ALICE, None, base_url=BASE, with_source=True)

    def test_changed_result_lists_stay_private(self) -> None:
        """Callers may change a result, so its lists must be new too, not only its top level."""
        first = account_entity(ALICE, None, base_url=BASE, with_source=True)
        first["fields"].append({"name": "site", "value": "changed by a caller"})
        first["emojis"].append({"shortcode": "changed"})
        first["roles"].append({"name": "changed"})
        first["source"]["fields"].append({"name": "site", "value": "changed by a caller"})

        second = account_entity(ALICE, None, base_url=BASE, with_source=True)

        assert second == rendered_afresh(ALICE, None, base_url=BASE, with_source=True)

    def test_source_only_when_requested(self) -> None:
        with_source = account_entity(ALICE, None, base_url=BASE, with_source=True)
        without_source = account_entity(ALICE, None, base_url=BASE)
        again_with_source = account_entity(ALICE, None, base_url=BASE, with_source=True)

        assert "source" not in without_source
        assert without_source == rendered_afresh(ALICE, None, base_url=BASE)
        assert with_source["source"] == again_with_source["source"]

    def test_other_base_url_gives_other_urls(self) -> None:
        account_entity(ALICE, None, base_url="https://one.example")

        entity = account_entity(ALICE, None, base_url="https://two.example")

        assert entity == rendered_afresh(ALICE, None, base_url="https://two.example")
        assert {name: entity[name] for name in ("url", "uri", "avatar", "header")} == {
            "url": "https://two.example/@alice",
            "uri": "https://two.example/users/alice",
            "avatar": "https://two.example" + render.DEFAULT_AVATAR,
            "header": "https://two.example" + render.DEFAULT_HEADER,
        }


class TestStatusContent:
    """``status_content`` and the content ``status_entity`` gives."""

    def test_content_is_html_with_mentions(self) -> None:
        assert status_content(STATUS, base_url=BASE) == text_to_html(STATUS["text"], base_url=BASE, mentions={"bob": "2"})
        assert f'href="{BASE}/@bob"' in status_content(STATUS, base_url=BASE)

    def test_changed_text_renders_anew(self) -> None:
        status_content(STATUS, base_url=BASE)
        changed = {**STATUS, "text": "Bye @bob"}

        assert status_content(changed, base_url=BASE) == text_to_html("Bye @bob", base_url=BASE, mentions={"bob": "2"})

    def test_removed_mention_is_no_longer_a_link(self) -> None:
        status_content(STATUS, base_url=BASE)
        unmentioned = {**STATUS, "mentions": []}

        content = status_content(unmentioned, base_url=BASE)

        assert content == text_to_html(STATUS["text"], base_url=BASE)
        assert "mention" not in content

    def test_added_mention_becomes_a_link(self) -> None:
        text = "Hi @bob and @carol"
        status_content({**STATUS, "text": text}, base_url=BASE)
        both = {**STATUS, "text": text, "mentions": [{"id": "2", "username": "bob"}, {"id": "3", "username": "carol"}]}

        content = status_content(both, base_url=BASE)

        assert content == text_to_html(text, base_url=BASE, mentions={"bob": "2", "carol": "3"})
        assert f'href="{BASE}/@carol"' in content

    def test_other_base_url_gives_other_mention_links(self) -> None:
        status_content(STATUS, base_url="https://one.example")

        content = status_content(STATUS, base_url="https://two.example")

        assert content == text_to_html(STATUS["text"], base_url="https://two.example", mentions={"bob": "2"})
        assert 'href="https://two.example/@bob"' in content

    def test_status_entity_content_follows_the_text(self) -> None:
        accounts = {"1": account_entity(ALICE, None, base_url=BASE)}
        first = status_entity(STATUS, accounts, base_url=BASE)
        changed = status_entity({**STATUS, "text": "Bye @bob"}, accounts, base_url=BASE)

        assert first is not None and changed is not None
        assert first["content"] == text_to_html(STATUS["text"], base_url=BASE, mentions={"bob": "2"})
        assert changed["content"] == text_to_html("Bye @bob", base_url=BASE, mentions={"bob": "2"})

    def test_reblog_has_no_content_of_its_own(self) -> None:
        accounts = {"1": account_entity(ALICE, None, base_url=BASE), "2": account_entity(BOB, None, base_url=BASE)}
        reblog = {**STATUS, "id": "101", "account_id": "2", "text": "", "mentions": [], "reblog": STATUS}

        entity = status_entity(reblog, accounts, base_url=BASE)

        assert entity is not None
        assert entity["content"] == ""
        assert entity["reblog"]["content"] == status_content(STATUS, base_url=BASE)


class TestStatusEntity:
    """``status_entity`` with a memo of each status's fixed fields."""

    def test_counts_and_flags_follow_the_record(self) -> None:
        accounts = {"1": account_entity(ALICE, None, base_url=BASE)}
        status_entity(STATUS, accounts, base_url=BASE)
        counted = {**STATUS, "replies_count": 2, "reblogs_count": 3, "favourites_count": 4, "favourited": True}

        entity = status_entity(counted, accounts, base_url=BASE)

        assert entity == status_afresh(counted, accounts)
        assert entity is not None
        assert (entity["replies_count"], entity["reblogs_count"], entity["favourites_count"]) == (2, 3, 4)
        assert entity["favourited"] is True
        assert entity["reblogged"] is False

    def test_removed_mention_leaves_the_rendering(self) -> None:
        accounts = {"1": account_entity(ALICE, None, base_url=BASE)}
        status_entity(STATUS, accounts, base_url=BASE)
        unmentioned = {**STATUS, "mentions": []}

        entity = status_entity(unmentioned, accounts, base_url=BASE)

        assert entity == status_afresh(unmentioned, accounts)
        assert entity is not None
        assert entity["mentions"] == []
        assert "mention" not in entity["content"]

    def test_field_order_matches_a_fresh_rendering(self) -> None:
        accounts = {"1": account_entity(ALICE, None, base_url=BASE)}
        status_entity(STATUS, accounts, base_url=BASE)

        entity = status_entity(STATUS, accounts, base_url=BASE)
        fresh = status_afresh(STATUS, accounts)

        assert entity is not None and fresh is not None
        assert list(entity) == list(fresh)
        assert list(entity)[:3] == ["id", "created_at", "in_reply_to_id"]

    def test_caller_changes_do_not_reach_the_memo(self) -> None:
        accounts = {"1": account_entity(ALICE, None, base_url=BASE)}
        first = status_entity(STATUS, accounts, base_url=BASE)
        assert first is not None
        first["content"] = "changed"
        first["mentions"][0]["username"] = "mallory"
        first["tags"].append({"name": "x"})

        second = status_entity(STATUS, accounts, base_url=BASE)

        assert second == status_afresh(STATUS, accounts)
        assert second is not None
        assert second["mentions"][0]["username"] == "bob"
        assert second["tags"] == []


class TestMemoBound:
    """Past ``MAX_MEMO_ENTRIES`` a memo starts empty again instead of growing."""

    def test_account_memo_empties_at_bound(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(render, "MAX_MEMO_ENTRIES", 3)
        sizes = []
        for n in range(7):
            account = {**ALICE, "id": str(n), "display_name": f"Person {n}"}
            entity = account_entity(account, None, base_url=BASE)
            assert entity["display_name"] == f"Person {n}"
            sizes.append(len(render._ACCOUNTS_WITHOUT_STATS))

        assert sizes == [1, 2, 3, 1, 2, 3, 1]

    def test_status_memo_empties_at_bound(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(render, "MAX_KEPT_STATUS_STRINGS", 3)
        accounts = {"1": account_entity(ALICE, None, base_url=BASE)}
        sizes = []
        for n in range(7):
            status = {**STATUS, "id": str(200 + n), "text": f"status {n}", "mentions": []}
            entity = status_entity(status, accounts, base_url=BASE)
            assert entity is not None
            assert entity["content"] == f"<p>status {n}</p>"
            sizes.append(len(render._STATUS_STRINGS))

        assert sizes == [1, 2, 3, 1, 2, 3, 1]

    def test_renderings_are_right_after_the_memo_empties(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(render, "MAX_MEMO_ENTRIES", 1)
        account_entity(ALICE, None, base_url=BASE)
        account_entity(BOB, None, base_url=BASE)

        assert account_entity(ALICE, None, base_url=BASE) == rendered_afresh(ALICE, None, base_url=BASE)
        assert account_entity(BOB, None, base_url=BASE) == rendered_afresh(BOB, None, base_url=BASE)


def test_status_strings_stay_within_their_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "MAX_KEPT_STATUS_STRING_CHARS", 50_000)
    monkeypatch.setattr(render, "_kept_string_chars", [0])
    mentioned = [{"id": str(10 + n), "username": f"user{n}"} for n in range(40)]
    text = " ".join(f"@user{n}" for n in range(40))
    accounts = {"1": account_entity(ALICE, None, base_url=BASE)}
    for n in range(30):
        base = f"https://{'h' * 240}{n}.example"
        status = {**STATUS, "id": str(400 + n), "text": text, "mentions": mentioned}
        entity = status_entity(status, accounts, base_url=base)
        assert entity is not None
        assert entity["mentions"][0]["url"] == f"{base}/@user0"
        assert render._kept_string_chars[0] <= 50_000

    assert len(render._STATUS_STRINGS) < 30
