"""Concurrent page reads share their internal calls, and each still gets its own page and flags."""

from __future__ import annotations

import asyncio

import pytest

from tests.gateway.test_statuses_api import wait_for_home
from tests.support.api import PublicApi, User
from tests.support.stack import Stack
from twitter_shared.settings import ServiceName
from twitter_shared.web import METRICS

READERS = 6


@pytest.fixture
def backend() -> str:
    return "sqlite"


def batch_sizes(stack: Stack) -> dict[str, tuple[float, float]]:
    """Return (batches, look-ups) sent so far by each of the gateway's coalescers."""
    registry = stack.app(ServiceName.GATEWAY)[METRICS].registry
    totals: dict[str, dict[str, float]] = {}
    for metric in registry.collect():
        if metric.name != "gateway_batch_size":
            continue
        for sample in metric.samples:
            if sample.name.endswith(("_count", "_sum")):
                totals.setdefault(sample.labels["call"], {})[sample.name.rsplit("_", 1)[-1]] = sample.value
    return {call: (values["count"], values["sum"]) for call, values in totals.items()}


async def readers_with_their_own_timelines(api: PublicApi) -> list[User]:
    """Readers who each follow a different author; each favourites a different status of the shared one."""
    shared = await api.register_user()
    readers = [await api.register_user() for _ in range(READERS)]
    shared_ids = []
    for number in range(READERS):
        posted = await api.call("POST", "/api/v1/statuses", token=shared.token, data={"status": f"shared {number}"})
        shared_ids.append(posted.body["id"])
    for number, reader in enumerate(readers):
        author = await api.register_user()
        await api.call("POST", f"/api/v1/accounts/{author.id}/follow", token=reader.token)
        await api.call("POST", f"/api/v1/accounts/{shared.id}/follow", token=reader.token)
        await api.call("POST", "/api/v1/statuses", token=author.token, data={"status": f"only for reader {number}"})
        await api.call("POST", f"/api/v1/statuses/{shared_ids[number]}/favourite", token=reader.token)
    for reader in readers:
        await wait_for_home(api, reader.token, READERS + 1)
    return readers


async def test_home_batch_keeps_each_reader_apart(api: PublicApi, stack: Stack) -> None:
    readers = await readers_with_their_own_timelines(api)
    alone = [(await api.call("GET", "/api/v1/timelines/home", token=reader.token)).body for reader in readers]
    before = batch_sizes(stack)

    together = await asyncio.gather(*(api.call("GET", "/api/v1/timelines/home", token=reader.token) for reader in readers))

    assert [answer.status for answer in together] == [200] * READERS
    assert [answer.body for answer in together] == alone
    for number, page in enumerate(alone):
        assert page[0]["content"] == f"<p>only for reader {number}</p>"
        assert [status["content"] for status in page if status["favourited"]] == [f"<p>shared {number}</p>"]
    after = batch_sizes(stack)
    for call in ("timeline_pages", "post_pages"):
        batches, look_ups = (a - b for a, b in zip(after[call], before.get(call, (0, 0)), strict=True))
        assert look_ups == READERS
        assert batches < READERS, f"{call}: {READERS} concurrent reads made {batches:.0f} calls"


async def test_home_favourite_updates_kept_json(api: PublicApi) -> None:
    reader = (await readers_with_their_own_timelines(api))[0]
    page = (await api.call("GET", "/api/v1/timelines/home", token=reader.token)).body
    target = page[0]

    await api.call("POST", f"/api/v1/statuses/{target['id']}/favourite", token=reader.token)
    again = (await api.call("GET", "/api/v1/timelines/home", token=reader.token)).body

    assert (target["favourited"], target["favourites_count"]) == (False, 0)
    assert (again[0]["favourited"], again[0]["favourites_count"]) == (True, 1)
    assert again[0]["account"]["statuses_count"] == target["account"]["statuses_count"]


async def test_home_batch_post_service_down(
    api: PublicApi, stack: Stack
) -> None:
    readers = await readers_with_their_own_timelines(api)
    await stack.stop(ServiceName.POST)

    failed = await asyncio.gather(*(api.call("GET", "/api/v1/timelines/home", token=reader.token) for reader in readers))
    await stack.start(ServiceName.POST)
    recovered = None
    for _ in range(50):
        recovered = await asyncio.gather(*(api.call("GET", "/api/v1/timelines/home", token=reader.token) for reader in readers))
        if all(answer.status == 200 for answer in recovered):
            break
        await asyncio.sleep(0.1)

    assert {answer.status for answer in failed} == {503}
    assert all(isinstance(answer.body["error"], str) for answer in failed)
    assert recovered is not None and [len(answer.body) for answer in recovered] == [READERS + 1] * READERS


async def test_account_pages_batch_keeps_each_reader_apart(api: PublicApi, stack: Stack) -> None:
    readers = await readers_with_their_own_timelines(api)
    shared_id = (await api.call("GET", "/api/v1/timelines/home", token=readers[0].token)).body[-1]["account"]["id"]
    path = f"/api/v1/accounts/{shared_id}/statuses"
    tokens = [reader.token for reader in readers] + [None]
    alone = [(await api.call("GET", path, token=token)).body for token in tokens]
    before = batch_sizes(stack)

    together = await asyncio.gather(*(api.call("GET", path, token=token) for token in tokens))

    assert [answer.status for answer in together] == [200] * len(tokens)
    assert [answer.body for answer in together] == alone
    for number, page in enumerate(alone[:-1]):
        assert [status["content"] for status in page if status["favourited"]] == [f"<p>shared {number}</p>"]
    assert not any(status["favourited"] for status in alone[-1])
    batches, look_ups = (a - b for a, b in zip(batch_sizes(stack)["post_pages"], before["post_pages"], strict=True))
    assert look_ups == len(tokens)
    assert batches < len(tokens)


async def test_home_and_account_reads_share_calls(api: PublicApi, stack: Stack) -> None:
    readers = await readers_with_their_own_timelines(api)
    shared_id = (await api.call("GET", "/api/v1/timelines/home", token=readers[0].token)).body[-1]["account"]["id"]
    reads = [("GET", "/api/v1/timelines/home", reader.token) for reader in readers]
    reads += [("GET", f"/api/v1/accounts/{shared_id}/statuses", reader.token) for reader in readers]
    alone = [(await api.call(method, path, token=token)).body for method, path, token in reads]
    before = batch_sizes(stack)

    together = await asyncio.gather(*(api.call(method, path, token=token) for method, path, token in reads))

    assert [answer.status for answer in together] == [200] * len(reads)
    assert [answer.body for answer in together] == alone
    batches, look_ups = (a - b for a, b in zip(batch_sizes(stack)["post_pages"], before["post_pages"], strict=True))
    assert look_ups == len(reads)
    assert batches < len(reads) / 2
