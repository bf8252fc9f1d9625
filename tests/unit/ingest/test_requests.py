"""The campaign bodies the API takes: `from_number` checked and kept in E.164."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.dialer.domain import telephony
from services.dialer.domain.sandbox import sandbox_outcome
from services.ingest.domain.errors import validation_errors
from services.ingest.domain.requests import CampaignBody, CreateCampaign
from services.scheduler.due_pump import DIALER_LOST
from shared.rules.outcomes import KNOWN_ERRORS, Outcome
from shared.rules.prompts import PROMPT_TOO_LARGE

BASE: dict[str, Any] = {
    "name": "Spring",
    "campaign_type": "sales",
    "agent_id": "agent_1",
    "start_date": "2026-04-01",
}
INVALID = {"from_number": ["The from number must be a valid phone number."]}


def test_from_number_is_optional() -> None:
    assert CreateCampaign.model_validate(BASE).from_number is None


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        pytest.param("+12125550123", "+12125550123", id="e164"),
        pytest.param("+1 (212) 555-0123", "+12125550123", id="us-formatted"),
        pytest.param("+44 20 7946 0000", "+442079460000", id="gb-spaced"),
        pytest.param("+49 30 123456", "+4930123456", id="de-spaced"),
    ],
)
@pytest.mark.parametrize("model", [CreateCampaign, CampaignBody])
def test_from_number_is_stored_in_e164(model: type[CampaignBody], raw: str, e164: str) -> None:
    assert model.model_validate({**BASE, "from_number": raw}).from_number == e164


def test_null_from_number_is_none() -> None:
    assert CampaignBody.model_validate({**BASE, "from_number": None}).from_number is None


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("12", id="too-short"),
        pytest.param("+1 212 555 01", id="incomplete"),
        pytest.param("2125550123", id="no-country-code"),
        pytest.param("+999123456789", id="unknown-country-code"),
        pytest.param("call me", id="words"),
        pytest.param(12125550123, id="json-number"),
        pytest.param(True, id="boolean"),
        pytest.param(["+12125550123"], id="array"),
        pytest.param({"number": "+12125550123"}, id="object"),
    ],
)
@pytest.mark.parametrize("model", [CreateCampaign, CampaignBody])
def test_an_invalid_from_number_has_the_documented_message(
    model: type[CampaignBody], raw: object
) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate({**BASE, "from_number": raw})

    assert validation_errors(caught.value) == INVALID


def test_the_from_number_message_sits_beside_the_other_fields_messages() -> None:
    with pytest.raises(ValidationError) as caught:
        CreateCampaign.model_validate({**BASE, "from_number": "12", "max_retries": 11})

    assert validation_errors(caught.value) == {
        "max_retries": ["The max retries must not be greater than 10."],
        **INVALID,
    }


def test_every_error_an_attempt_can_end_with_is_a_known_trigger() -> None:
    reported = {
        telephony.CARRIER_UNAVAILABLE,
        telephony.CARRIER_ERROR,
        telephony.INVALID_NUMBER,
        telephony.OUTCOME_UNKNOWN,
        PROMPT_TOO_LARGE,
        DIALER_LOST,
        *(sandbox_outcome(f"+1212555012{digit}").error for digit in "0123456789"),
    } - {None}
    assert reported == set(KNOWN_ERRORS)


def test_auto_dnc_triggers_take_the_known_names_only() -> None:
    body = CampaignBody.model_validate(
        {
            **BASE,
            "auto_dnc_trigger_statuses": list(Outcome),
            "auto_dnc_trigger_errors": list(KNOWN_ERRORS),
        }
    )
    assert body.auto_dnc_trigger_statuses == [outcome.value for outcome in Outcome]
    with pytest.raises(ValidationError) as refused:
        CampaignBody.model_validate(
            {**BASE, "auto_dnc_trigger_statuses": ["completed", "answered", "rejected"]}
        )
    assert validation_errors(refused.value) == {
        "auto_dnc_trigger_statuses": [
            "The auto dnc trigger statuses may only hold these names: "
            f"{', '.join(Outcome)} (unknown: answered, rejected)."
        ]
    }
