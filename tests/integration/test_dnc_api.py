"""The do-not-call endpoints and store, in-process on the real broker and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from services.ingest.app import Deps, create_app
from shared import keys
from shared.clock import to_iso
from shared.models import CampaignRules
from shared.rules.dnc import (
    ENVIRONMENT_SCOPE,
    DncEntry,
    EntrySource,
    applicable_scope,
    campaign_scope,
)
from shared.store.dnc import DncStore
from tests.conftest import KafkaServer, RedisServer
from tests.integration.conftest import ingest_settings
from tests.support import ALWAYS_OPEN, AUTH, TOKEN, stored_keys

pytestmark = pytest.mark.integration
OTHER = {"Authorization": "Bearer other-token"}
ENV = "env-a"
NUMBER = "+12125550123"
START = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
INVALID = "The to must be a valid phone number."


@dataclass
class SteppingClock:
    """A clock the test moves by hand."""

    at: datetime

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock(START)


@pytest.fixture
async def client(
    kafka_server: KafkaServer, redis_server: RedisServer, clock: SteppingClock
) -> AsyncIterator[TestClient[Any, Any]]:
    settings = ingest_settings(
        kafka_server, redis_server, api_tokens=f"{TOKEN}:{ENV},other-token:env-b"
    )
    async with TestClient(TestServer(create_app(settings, Deps(clock=clock)))) as test_client:
        yield test_client


@pytest.fixture
def store(redis: Redis) -> DncStore:
    return DncStore(redis)


async def _json(response: Any) -> Any:
    return orjson.loads(await response.read())


async def _add(
    client: TestClient[Any, Any], headers: dict[str, str] = AUTH, **body: Any
) -> tuple[int, Any]:
    response = await client.post("/api/v1/dnc", json=body, headers=headers)
    return response.status, await _json(response)


async def _lookup(
    client: TestClient[Any, Any], number: str, headers: dict[str, str] = AUTH
) -> tuple[int, Any]:
    response = await client.get("/api/v1/dnc", params={"number": number}, headers=headers)
    return response.status, await _json(response)


async def _remove(
    client: TestClient[Any, Any],
    number: str,
    headers: dict[str, str] = AUTH,
    campaign_id: str | None = None,
) -> tuple[int, Any]:
    params = {"campaign_id": campaign_id} if campaign_id is not None else {}
    response = await client.delete(
        f"/api/v1/dnc/{number.replace('+', '%2B').replace(' ', '%20')}",
        params=params,
        headers=headers,
    )
    return response.status, await _json(response)


async def _campaign(client: TestClient[Any, Any], **overrides: Any) -> dict[str, Any]:
    agent = await _json(
        await client.post("/api/v1/agents", json={"name": "A", "prompt": "Hi"}, headers=AUTH)
    )
    response = await client.post(
        "/api/v1/campaigns",
        json={**ALWAYS_OPEN, "agent_id": agent["data"]["id"], **overrides},
        headers=AUTH,
    )
    assert response.status == 201
    campaign: dict[str, Any] = (await _json(response))["data"]
    return campaign


def _view(
    number: str = NUMBER,
    campaign_id: str | None = None,
    reason: str | None = None,
    expires_at: str | None = None,
) -> dict[str, Any]:
    return {
        "number": number,
        "campaign_id": campaign_id,
        "source": "api",
        "reason": reason,
        "created_at": to_iso(START),
        "expires_at": expires_at,
    }


async def test_add_look_up_and_remove_a_number(client: TestClient[Any, Any]) -> None:
    status, body = await _add(client, numbers=[NUMBER, "+442079460000"], reason="asked us")
    assert status == 201, body
    assert body == {"success": True, "data": {"added": 2, "invalid": []}}

    status, body = await _lookup(client, NUMBER)
    assert status == 200
    assert body == {"success": True, "data": [_view(reason="asked us")]}

    status, body = await _remove(client, NUMBER)
    assert (status, body) == (200, {"success": True, "data": {"removed": 1}})
    assert await _lookup(client, NUMBER) == (200, {"success": True, "data": []})
    assert (await _lookup(client, "+442079460000"))[1]["data"] == [
        _view("+442079460000", reason="asked us")
    ]

    status, body = await _remove(client, NUMBER)
    assert status == 404
    assert body == {
        "success": False,
        "message": "Do-not-call entry not found.",
        "code": "DNC_ENTRY_NOT_FOUND",
    }


async def test_numbers_are_stored_and_found_in_e164(
    client: TestClient[Any, Any], store: DncStore
) -> None:
    status, body = await _add(client, numbers=["+1 (212) 555-0123", "+1.212.555.0123"])
    assert status == 201
    assert body["data"] == {"added": 1, "invalid": []}

    for written in ("+12125550123", "+1 (212) 555-0123", "+1-212-555-0123"):
        status, body = await _lookup(client, written)
        assert status == 200
        assert body["data"] == [_view()], written
    # An unencoded plus in the query string stays a plus.
    response = await client.get(f"/api/v1/dnc?number={NUMBER}", headers=AUTH)
    assert (await _json(response))["data"] == [_view()]
    blocked = await store.is_blocked(ENV, ENVIRONMENT_SCOPE, NUMBER, START)
    assert blocked is not None
    assert blocked.number == NUMBER

    assert await _remove(client, "+1 (212) 555-0123") == (
        200,
        {"success": True, "data": {"removed": 1}},
    )
    assert await store.is_blocked(ENV, ENVIRONMENT_SCOPE, NUMBER, START) is None


async def test_invalid_numbers_are_reported_per_item_and_the_valid_ones_added(
    client: TestClient[Any, Any],
) -> None:
    numbers: list[Any] = [NUMBER, "12", 42, "", "+1 212 555 01", None, "+442079460000"]

    status, body = await _add(client, numbers=numbers)

    assert status == 201
    assert body == {
        "success": True,
        "data": {
            "added": 2,
            "invalid": [
                {"index": index, "number": numbers[index], "message": INVALID}
                for index in (1, 2, 3, 4, 5)
            ],
        },
    }
    assert len((await _lookup(client, NUMBER))[1]["data"]) == 1
    assert len((await _lookup(client, "+442079460000"))[1]["data"]) == 1


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        pytest.param({}, {"numbers": ["The numbers field is required."]}, id="missing"),
        pytest.param(
            {"numbers": []}, {"numbers": ["The numbers must have at least 1 items."]}, id="empty"
        ),
        pytest.param(
            {"numbers": [NUMBER] * 10_001},
            {"numbers": ["The numbers must not have more than 10000 items."]},
            id="too-many",
        ),
        pytest.param(
            {"numbers": NUMBER}, {"numbers": ["The numbers must be an array."]}, id="not-a-list"
        ),
        pytest.param(
            {"numbers": [NUMBER], "expires_at": "2026-03-02T11:59:59Z"},
            {"expires_at": ["The expires at must be a date in the future."]},
            id="expires-in-the-past",
        ),
        pytest.param(
            {"numbers": [NUMBER], "expires_at": "2026-03-02T12:00:00Z"},
            {"expires_at": ["The expires at must be a date in the future."]},
            id="expires-now",
        ),
        pytest.param(
            {"numbers": [NUMBER], "expires_at": "2026-04-01T12:00:00"},
            {
                "expires_at": [
                    "The expires at must be a valid RFC 3339 timestamp with a time zone offset."
                ]
            },
            id="expires-without-offset",
        ),
        pytest.param(
            {"numbers": [NUMBER], "expires_at": 1893456000},
            {"expires_at": ["The expires at must be a valid RFC 3339 timestamp."]},
            id="expires-as-number",
        ),
        pytest.param(
            {"numbers": [NUMBER], "expires_at": "soon"},
            {"expires_at": ["The expires at must be a valid RFC 3339 timestamp."]},
            id="expires-garbage",
        ),
        pytest.param(
            {"numbers": [NUMBER], "reason": "x" * 256},
            {"reason": ["The reason must not be greater than 255 characters."]},
            id="reason-too-long",
        ),
    ],
)
async def test_a_bad_add_body_is_a_422_and_stores_nothing(
    client: TestClient[Any, Any], redis: Redis, body: dict[str, Any], errors: dict[str, Any]
) -> None:
    status, answer = await _add(client, **body)

    assert status == 422
    assert answer == {"success": False, "message": "The given data was invalid.", "errors": errors}
    assert await stored_keys(redis, "*dnc*") == []


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        pytest.param("", {"number": ["The number field is required."]}, id="missing"),
        pytest.param("?number=", {"number": ["The number field is required."]}, id="empty"),
        pytest.param("?number=12", {"number": ["The number must be a valid phone number."]}),
        pytest.param(
            "?number=2125550123",
            {"number": ["The number must be a valid phone number."]},
            id="no-country-code",
        ),
    ],
)
async def test_a_bad_lookup_is_a_422(
    client: TestClient[Any, Any], query: str, errors: dict[str, Any]
) -> None:
    response = await client.get(f"/api/v1/dnc{query}", headers=AUTH)

    assert response.status == 422
    assert await _json(response) == {
        "success": False,
        "message": "The given data was invalid.",
        "errors": errors,
    }


async def test_removing_an_unparseable_number_is_a_422(client: TestClient[Any, Any]) -> None:
    status, body = await _remove(client, "12")

    assert status == 422
    assert body["errors"] == {"number": ["The number must be a valid phone number."]}


async def test_an_unknown_campaign_is_a_404(client: TestClient[Any, Any], redis: Redis) -> None:
    status, body = await _add(client, numbers=[NUMBER], campaign_id="nope")

    assert status == 404
    assert body == {
        "success": False,
        "message": "Campaign not found.",
        "code": "CAMPAIGN_NOT_FOUND",
    }
    assert await stored_keys(redis, "*dnc*") == []


async def test_lists_stay_inside_their_environment(
    client: TestClient[Any, Any], store: DncStore, redis: Redis
) -> None:
    campaign = await _campaign(client)
    assert (await _add(client, numbers=[NUMBER], reason="a"))[0] == 201

    assert await _lookup(client, NUMBER, OTHER) == (200, {"success": True, "data": []})
    assert (await _remove(client, NUMBER, OTHER))[0] == 404
    assert (await _remove(client, NUMBER, OTHER, campaign_id=campaign["id"]))[0] == 404
    status, body = await _add(client, OTHER, numbers=[NUMBER], campaign_id=campaign["id"])
    assert (status, body["code"]) == (404, "CAMPAIGN_NOT_FOUND")
    assert await store.is_blocked("env-b", ENVIRONMENT_SCOPE, NUMBER, START) is None

    assert (await _add(client, OTHER, numbers=[NUMBER], reason="b"))[0] == 201
    assert (await _remove(client, NUMBER, OTHER))[1]["data"] == {"removed": 1}
    assert (await _lookup(client, NUMBER))[1]["data"] == [_view(reason="a")]
    dnc_keys = await stored_keys(redis, "*dnc*")
    assert dnc_keys
    assert all(key.startswith(f"{keys.PREFIX}:env:{{{ENV}}}:") for key in dnc_keys)


async def test_campaign_lists_are_separate_from_the_environment_list(
    client: TestClient[Any, Any], store: DncStore
) -> None:
    own = await _campaign(client, do_not_call_list_source="campaign")
    other = await _campaign(client)
    assert (await _add(client, numbers=[NUMBER], campaign_id=own["id"], reason="own"))[0] == 201

    scope = applicable_scope(CampaignRules.model_validate(own), own["id"])
    assert scope == campaign_scope(own["id"])
    assert await store.is_blocked(ENV, scope, NUMBER, START) is not None
    assert await store.is_blocked(ENV, ENVIRONMENT_SCOPE, NUMBER, START) is None
    assert await store.is_blocked(ENV, campaign_scope(other["id"]), NUMBER, START) is None

    assert (await _add(client, numbers=[NUMBER], reason="everyone"))[0] == 201
    assert (await _lookup(client, NUMBER))[1]["data"] == [
        _view(reason="everyone"),
        _view(campaign_id=own["id"], reason="own"),
    ]

    assert (await _remove(client, NUMBER, campaign_id=other["id"]))[0] == 404
    status, body = await _remove(client, NUMBER, campaign_id=own["id"])
    assert (status, body["data"]) == (200, {"removed": 1})
    assert (await _lookup(client, NUMBER))[1]["data"] == [_view(reason="everyone")]

    assert (await _add(client, numbers=[NUMBER], campaign_id=other["id"]))[0] == 201
    status, body = await _remove(client, NUMBER)
    assert (status, body["data"]) == (200, {"removed": 2})
    assert (await _lookup(client, NUMBER))[1]["data"] == []


async def test_an_entry_stops_counting_at_its_expiry(
    client: TestClient[Any, Any], store: DncStore, redis: Redis, clock: SteppingClock
) -> None:
    expires = START + timedelta(seconds=2, microseconds=500)
    status, _ = await _add(client, numbers=[NUMBER], expires_at=to_iso(expires))
    assert status == 201
    list_key = keys.dnc_list(ENV, ENVIRONMENT_SCOPE)

    just_before = expires - timedelta(microseconds=1)
    blocked = await store.is_blocked(ENV, ENVIRONMENT_SCOPE, NUMBER, just_before)
    assert blocked is not None
    assert blocked.expires_at == expires
    assert await store.blocked_many(ENV, ENVIRONMENT_SCOPE, [NUMBER], just_before) == {
        NUMBER: blocked
    }
    clock.at = just_before
    assert (await _lookup(client, NUMBER))[1]["data"] == [_view(expires_at=to_iso(expires))]

    assert await store.is_blocked(ENV, ENVIRONMENT_SCOPE, NUMBER, expires) is None
    # Read past its expiry, the entry was removed by the same script, and so was the empty list.
    assert await redis.hget(list_key, NUMBER) is None
    assert await redis.smembers(keys.dnc_scopes(ENV)) == set()

    assert (await _add(client, numbers=[NUMBER], expires_at=to_iso(expires)))[0] == 201
    clock.at = expires
    assert (await _lookup(client, NUMBER))[1]["data"] == []
    assert (await _add(client, numbers=[NUMBER], expires_at=to_iso(expires)))[0] == 422
    clock.at = just_before
    assert (await _add(client, numbers=[NUMBER], expires_at=to_iso(expires)))[0] == 201
    clock.at = expires
    assert (await _remove(client, NUMBER))[0] == 404
    assert await redis.hget(list_key, NUMBER) is None


async def test_ten_thousand_numbers_in_one_request_are_all_stored(
    client: TestClient[Any, Any], store: DncStore, redis: Redis
) -> None:
    numbers = [f"+44 20 7946 {i:04d}" for i in range(10_000)]
    e164 = [f"+44207946{i:04d}" for i in range(10_000)]

    status, body = await _add(client, numbers=numbers, reason="bulk")

    assert status == 201
    assert body["data"] == {"added": 10_000, "invalid": []}
    assert await redis.hlen(keys.dnc_list(ENV, ENVIRONMENT_SCOPE)) == 10_000
    blocked = await store.blocked_many(ENV, ENVIRONMENT_SCOPE, e164, START)
    assert set(blocked) == set(e164)
    assert {entry.reason for entry in blocked.values()} == {"bulk"}
    assert (await _lookup(client, "+44 20 7946 9999"))[1]["data"][0]["number"] == e164[-1]


async def test_store_batch_checks_tell_blocked_from_expired_and_absent(store: DncStore) -> None:
    live = DncEntry("+12125550100", ENVIRONMENT_SCOPE, EntrySource.AUTO, "outcome:completed", START)
    later = DncEntry(
        "+12125550101",
        ENVIRONMENT_SCOPE,
        EntrySource.IMPORT,
        None,
        START,
        START + timedelta(hours=1),
    )
    gone = DncEntry(
        "+12125550102", ENVIRONMENT_SCOPE, EntrySource.API, None, START, START + timedelta(hours=1)
    )
    assert await store.add_many(ENV, ENVIRONMENT_SCOPE, [live, later, gone]) == 3
    # Replacing an entry is not a new number; the latest write wins.
    gone = DncEntry(
        gone.number, ENVIRONMENT_SCOPE, EntrySource.API, None, START, START + timedelta(minutes=1)
    )
    assert await store.add_many(ENV, ENVIRONMENT_SCOPE, [gone]) == 0

    at = START + timedelta(minutes=1)
    numbers = [live.number, later.number, gone.number, "+12125550103"]
    assert await store.blocked_many(ENV, ENVIRONMENT_SCOPE, numbers, at) == {
        live.number: live,
        later.number: later,
    }
    assert await store.get(ENV, gone.number) == []
    assert await store.get(ENV, later.number, now=at) == [later]
    assert await store.blocked_many(ENV, ENVIRONMENT_SCOPE, [], at) == {}
    assert await store.add_many(ENV, ENVIRONMENT_SCOPE, []) == 0


async def test_store_refuses_an_entry_for_another_list(store: DncStore, redis: Redis) -> None:
    entry = DncEntry(NUMBER, campaign_scope("c1"), EntrySource.API, None, START)

    with pytest.raises(ValueError, match="not 'environment'"):
        await store.add_many(ENV, ENVIRONMENT_SCOPE, [entry])
    assert await stored_keys(redis, "*dnc*") == []


async def test_store_get_without_now_shows_expired_entries(store: DncStore) -> None:
    expired = DncEntry(NUMBER, ENVIRONMENT_SCOPE, EntrySource.API, None, START, START)
    await store.add_many(ENV, ENVIRONMENT_SCOPE, [expired])

    assert await store.get(ENV, NUMBER) == [expired]
    assert await store.get(ENV, NUMBER, now=START) == []
    assert await store.get(ENV, NUMBER) == []
    assert await store.remove(ENV, NUMBER) == 0
