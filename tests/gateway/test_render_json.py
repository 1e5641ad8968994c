"""The gateway's kept JSON of statuses and accounts is the JSON of a fresh rendering, whatever changed.

``status_json`` keeps a template of each status, with slots for its counts and flags, its
author and its original, and ``account_json`` keeps what it serializes. Every test renders
once so that the JSON is kept, changes one input, and compares the next JSON with
``status_entity`` and ``account_entity`` rendered with empty memos.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.gateway.test_render_memo import ALICE, BASE, BOB, STATUS
from twitter_gateway import render, render_json
from twitter_gateway.render import account_entity, status_entity
from twitter_gateway.render_json import Author, account_json, author_of, status_json, status_list_json
from twitter_shared.errors import UpstreamError

STATS = {"1": {"statuses_count": 5, "last_status_at": "2026-12-04"}, "2": {"statuses_count": 1, "last_status_at": None}}
RECORDS = {"1": ALICE, "2": BOB}


@pytest.fixture(autouse=True)
def _empty_memos(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("_ACCOUNTS_WITHOUT_STATS", "_STATUS_STRINGS"):
        monkeypatch.setattr(render, name, {})
    monkeypatch.setattr(render, "_kept_string_chars", [0])
    for name in ("_ACCOUNT_JSON", "_TEMPLATES", "_AUTHORS"):
        monkeypatch.setattr(render_json, name, {})
    monkeypatch.setattr(render_json, "_kept_bytes", {"status": 0, "account": 0})
    yield


def authors(records: dict[str, dict[str, Any]], stats: dict[str, Any]) -> dict[str, Author]:
    return {
        account_id: Author(record["username"], account_json(record, stats.get(account_id), base_url=BASE))
        for account_id, record in records.items()
    }


def fresh(status: dict[str, Any], records: dict[str, dict[str, Any]], stats: dict[str, Any], **options: Any) -> Any:
    """The JSON value of ``status`` rendered by ``status_entity`` with every memo empty."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(render, "_ACCOUNTS_WITHOUT_STATS", {})
        patch.setattr(render, "_STATUS_STRINGS", {})
        accounts = {key: account_entity(record, stats.get(key), base_url=BASE) for key, record in records.items()}
        return orjson.loads(orjson.dumps(status_entity(status, accounts, base_url=BASE, **options)))


def as_value(fragment: orjson.Fragment | None) -> Any:
    return orjson.loads(orjson.dumps(fragment))


REBLOG = {**STATUS, "id": "101", "account_id": "2", "text": "", "mentions": [], "reblog": STATUS}


@pytest.mark.parametrize(
    ("status", "records", "stats"),
    [
        (STATUS, RECORDS, STATS),
        ({**STATUS, "favourites_count": 3}, RECORDS, STATS),
        ({**STATUS, "reblogs_count": 2, "replies_count": 1}, RECORDS, STATS),
        ({**STATUS, "favourited": True}, RECORDS, STATS),
        ({**STATUS, "reblogged": True}, RECORDS, STATS),
        ({**STATUS, "mentions": []}, RECORDS, STATS),
        (STATUS, RECORDS, {**STATS, "1": {"statuses_count": 6, "last_status_at": "2026-12-05"}}),
        (STATUS, {**RECORDS, "1": {**ALICE, "followers_count": 9}}, STATS),
        (STATUS, {**RECORDS, "1": {**ALICE, "display_name": "Alice B."}}, STATS),
        (REBLOG, RECORDS, STATS),
        ({**REBLOG, "reblog": {**STATUS, "favourites_count": 7}}, RECORDS, STATS),
    ],
    ids=[
        "same",
        "favourites",
        "reblogs-and-replies",
        "favourited",
        "reblogged",
        "mention-gone",
        "author-posted",
        "author-followed",
        "author-renamed",
        "reblog",
        "reblogged-original-counted",
    ],
)
def test_json_after_a_change_is_a_fresh_rendering(status: dict, records: dict, stats: dict) -> None:
    first = as_value(status_json(STATUS, authors(RECORDS, STATS), base_url=BASE))
    kept_reblog = as_value(status_json(REBLOG, authors(RECORDS, STATS), base_url=BASE))

    again = as_value(status_json(status, authors(records, stats), base_url=BASE))

    assert first == fresh(STATUS, RECORDS, STATS)
    assert kept_reblog == fresh(REBLOG, RECORDS, STATS)
    assert again == fresh(status, records, stats)


def test_with_text_is_kept_apart() -> None:
    status_json(STATUS, authors(RECORDS, STATS), base_url=BASE)

    with_text = as_value(status_json(STATUS, authors(RECORDS, STATS), base_url=BASE, with_text=True))
    without = as_value(status_json(STATUS, authors(RECORDS, STATS), base_url=BASE))

    assert with_text == fresh(STATUS, RECORDS, STATS, with_text=True)
    assert with_text["text"] == STATUS["text"]
    assert "text" not in without


def test_other_base_url_is_kept_apart() -> None:
    status_json(STATUS, authors(RECORDS, STATS), base_url=BASE)
    other = {key: Author(record["username"], account_json(record, None, base_url="https://two.example")) for key, record in RECORDS.items()}

    value = as_value(status_json(STATUS, other, base_url="https://two.example"))

    assert value["url"] == "https://two.example/@alice/100"
    assert value["account"]["url"] == "https://two.example/@alice"


def test_status_json_without_author_is_none() -> None:
    only_bob = authors({"2": BOB}, STATS)

    assert status_json(STATUS, only_bob, base_url=BASE) is None
    assert status_json(REBLOG, only_bob, base_url=BASE) is None


def test_json_memos_empty_at_their_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_json, "MAX_KEPT_STATUS_JSON", 3)
    monkeypatch.setattr(render_json, "MAX_KEPT_ACCOUNT_JSON", 2)
    sizes = []
    for n in range(7):
        status = {**STATUS, "id": str(200 + n), "text": f"status {n}", "mentions": []}
        record = {**ALICE, "followers_count": n}
        value = as_value(status_json(status, authors({"1": record}, STATS), base_url=BASE))
        assert value["content"] == f"<p>status {n}</p>"
        assert value["account"]["followers_count"] == n
        sizes.append((len(render_json._TEMPLATES), len(render_json._ACCOUNT_JSON)))

    # The status memo drops its oldest entry (an eighth, rounded up) when full; the account memo empties.
    assert sizes == [(1, 1), (2, 2), (3, 1), (3, 2), (3, 1), (3, 2), (3, 1)]
    assert [key[2] for key in render_json._TEMPLATES] == ["204", "205", "206"]


def test_author_change_keeps_status_json() -> None:
    only_alice = {"1": ALICE}
    status_json(STATUS, authors(only_alice, STATS), base_url=BASE)
    posted = {**STATS, "1": {"statuses_count": 6, "last_status_at": "2026-12-05"}}

    value = as_value(status_json(STATUS, authors(only_alice, posted), base_url=BASE))

    assert value["account"]["statuses_count"] == 6
    assert len(render_json._TEMPLATES) == 1
    assert len(render_json._ACCOUNT_JSON) == 2


def test_reblog_follows_original_author_change() -> None:
    status_json(REBLOG, authors(RECORDS, STATS), base_url=BASE)
    renamed = {**RECORDS, "1": {**ALICE, "display_name": "Alice B."}}

    value = as_value(status_json(REBLOG, authors(renamed, STATS), base_url=BASE))

    assert value == fresh(REBLOG, renamed, STATS)
    assert value["reblog"]["account"]["display_name"] == "Alice B."
    assert value["account"]["display_name"] == "Bob"


def test_status_list_is_array_of_status_json() -> None:
    authorless = {**STATUS, "id": "102", "account_id": "3"}
    statuses = [STATUS, authorless, REBLOG, {**STATUS, "id": "103", "favourited": True}]

    value = as_value(status_list_json(statuses, authors(RECORDS, STATS), base_url=BASE))

    expected = [as_value(status_json(status, authors(RECORDS, STATS), base_url=BASE)) for status in statuses]
    assert value == [item for item in expected if item is not None]
    assert [item["id"] for item in value] == ["100", "101", "103"]
    assert as_value(status_list_json([], authors(RECORDS, STATS), base_url=BASE)) == []
    assert as_value(status_list_json([authorless], authors(RECORDS, STATS), base_url=BASE)) == []


def test_author_of_reuses_same_record() -> None:
    record = dict(ALICE)
    first = author_of(record, STATS["1"], base_url=BASE)

    again = author_of(record, dict(STATS["1"]), base_url=BASE)
    posted = author_of(record, {"statuses_count": 6, "last_status_at": "2026-12-05"}, base_url=BASE)
    other_record = author_of(dict(ALICE, display_name="Alice B."), STATS["1"], base_url=BASE)

    assert again is first
    assert orjson.loads(posted.json)["statuses_count"] == 6
    assert orjson.loads(other_record.json)["display_name"] == "Alice B."
    assert orjson.loads(first.json) == account_entity(ALICE, STATS["1"], base_url=BASE)


def test_json_memos_stay_within_their_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_json, "MAX_KEPT_STATUS_JSON_BYTES", 20_000)
    monkeypatch.setattr(render_json, "MAX_KEPT_ACCOUNT_JSON_BYTES", 10_000)
    for n in range(60):
        base = f"https://{'h' * 200}{n}.example"
        status = {**STATUS, "id": str(300 + n), "mentions": []}
        value = as_value(status_json(status, authors({"1": ALICE}, STATS), base_url=base))
        assert value["url"] == f"{base}/@alice/{300 + n}"
        kept_status_bytes = sum(sum(map(len, template.pieces)) for template in render_json._TEMPLATES.values())
        assert kept_status_bytes == render_json._kept_bytes["status"] <= 20_000
        assert sum(map(len, render_json._ACCOUNT_JSON.values())) == render_json._kept_bytes["account"] <= 10_000

    assert len(render_json._TEMPLATES) < 60


def test_counts_change_keeps_template() -> None:
    status_json(STATUS, authors(RECORDS, STATS), base_url=BASE)
    counted = {**STATUS, "replies_count": 4, "reblogs_count": 3, "favourites_count": 2, "favourited": True}

    value = as_value(status_json(counted, authors(RECORDS, STATS), base_url=BASE))

    assert value == fresh(counted, RECORDS, STATS)
    assert len(render_json._TEMPLATES) == 1


def compact(status: dict[str, Any]) -> dict[str, Any]:
    """``status`` as the post service sends a known one: without the fixed fields other than the author."""
    compact_fields = ("id", "account_id", "reblog_of_id", "mentions", "replies_count", "reblogs_count", "favourites_count")
    flags = {"favourited": bool(status.get("favourited")), "reblogged": bool(status.get("reblogged"))}
    reblog = compact(status["reblog"]) if status.get("reblog") else None
    return {**{key: status[key] for key in compact_fields if key in status}, **flags, "reblog": reblog}


def test_compact_statuses_fill_pinned_templates() -> None:
    plain = {**STATUS, "mentions": []}
    original = {**plain, "id": "110"}
    reblog = {**REBLOG, "reblog": original, "reblog_of_id": "110"}
    status_list_json([plain, reblog], authors(RECORDS, STATS), base_url=BASE)
    counted = [{**plain, "favourites_count": 5, "favourited": True}, {**reblog, "reblog": {**original, "reblogs_count": 1}}]

    pinned = render_json.known_templates(BASE, ["100", "101", "999"])
    render_json._TEMPLATES.clear()
    value = as_value(status_list_json([compact(status) for status in counted], authors(RECORDS, STATS), base_url=BASE, pinned=pinned))

    assert sorted(pinned) == ["100", "101", "110"]
    assert value == [fresh(status, RECORDS, STATS) for status in counted]


def test_templates_with_mentions_are_not_pinned() -> None:
    status_json(STATUS, authors(RECORDS, STATS), base_url=BASE)

    assert STATUS["mentions"]
    assert render_json.known_templates(BASE, [STATUS["id"]]) == {}
    assert render_json.known_templates("https://two.example", [STATUS["id"]]) == {}


def test_compact_status_without_template_fails() -> None:
    with pytest.raises(UpstreamError):
        status_list_json([compact({**STATUS, "mentions": []})], authors(RECORDS, STATS), base_url=BASE)
