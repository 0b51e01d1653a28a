"""A client that hangs up on a non-streamed call still pays for what went upstream.

Served for real (uvicorn in a thread, the project's ASGI application): the client's
socket closes while the upstream call is in flight, as a script killed mid-call would.
"""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from tests.generation.conftest import wait_for
from tests.generation.gateway_helpers import *  # noqa: F403 (the fixtures)
from tests.generation.gateway_helpers import model_of, user_says
from tests.providers.fake_helpers import generation_calls
from usage.models import Reservation, UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


def _post_then_hang_up(url: str, path: str, token: str, body: dict[str, object], fake) -> None:
    """POST `body`, wait until the call has reached upstream, then close the socket."""
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {urlsplit(url).netloc}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as client:
        client.sendall(head + payload)
        assert fake.wait_for(lambda: generation_calls(fake) == 1, timeout=10)
        # Closed with the answer still due: no response was read.


@pytest.mark.parametrize("api", ["v1", "generate"])
def test_hanging_up_mid_call_is_metered_and_the_hold_settled(
    gateway_url, api_user, api_token, give_budget, make_provider, fake_upstream, api
):
    give_budget(api_user)  # so that the call holds budget
    provider = make_provider("openai", knobs="ttft=20000")
    if api == "v1":
        path = "/v1/chat/completions"
        body: dict[str, object] = {"model": model_of(provider), "messages": user_says()}
    else:
        path = "/api/generate"
        body = {"provider_id": str(provider.pk), "prompt": "Hello there"}

    _post_then_hang_up(gateway_url, path, api_token[1], body, fake_upstream)

    # The upstream request is stopped at once, not left running for the full answer.
    assert fake_upstream.wait_for(lambda: fake_upstream.early_closes == 1, timeout=10)
    record = wait_for(lambda: UsageRecord.objects.filter(outcome="cancelled").first())
    assert (record.source, record.user_id, record.provider_id) == ("api", api_user.pk, provider.pk)
    assert record.tokens_estimated
    assert record.input_tokens > 0  # the prompt was sent: the provider bills it
    assert record.output_tokens == 0
    reservation = wait_for(
        lambda: Reservation.objects.exclude(status=Reservation.Status.ACTIVE).first()
    )
    assert reservation.status == Reservation.Status.SETTLED
    assert reservation.actual_nanos == record.cost_nanos > 0
    assert UsageRecord.objects.count() == 1
