"""What the deployment tests of /metrics do against real processes: a chat answer and a
/v1 call, then a scrape whose counters must have moved."""

from __future__ import annotations

import httpx2
import openai

from tests.deploy import harness
from tests.metrics.scrape import value

TOKEN = "deploy-metrics-token-0123456789"


def scrape(base_url: str) -> str:
    answer = httpx2.get(
        f"{base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert answer.status_code == 200, answer.text[:500]
    return answer.text


def chat_and_gateway(send_to: str, read_from: str, gateway: str, setup: harness.Setup) -> None:
    """A chat message sent to `send_to`, its answer read from `read_from`; a streamed
    /v1 call to `gateway`."""
    cookies = harness.login(send_to, setup.username, setup.password)
    stream_path = harness.send_chat(send_to, cookies, setup.provider_id, "Hello, metrics")
    events = harness.read_sse(read_from, stream_path, cookies)
    assert events[-1].event == "done"
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=setup.api_token, max_retries=0)
    stream = client.chat.completions.create(
        model="Fake/fake-model", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def assert_counted(text: str, setup: harness.Setup) -> None:
    """The counters of one chat answer and one /v1 call, summed over every process."""
    requests = "switchboard_http_requests_total"
    assert value(text, requests, view="generation:send", status="200") == 1
    assert value(text, requests, view="generation:stream", status="200") >= 1
    assert value(text, requests, view="gateway:chat_completions", status="200") == 1
    labels = {"provider": "Fake", "model": "fake-model"}
    assert value(text, "switchboard_upstream_attempts_total", **labels, outcome="ok") == 2
    assert value(text, "switchboard_tokens_total", **labels, direction="input") > 0
    assert value(text, "switchboard_tokens_total", **labels, direction="output") > 0
    assert value(text, "switchboard_upstream_ttft_seconds_count", provider="Fake") == 2
    assert value(text, "switchboard_upstream_latency_seconds_count", provider="Fake") == 2
    assert value(text, "switchboard_queue_tasks", state="pending") == 0
    for secret in ("sk-deploy-0123456789", setup.api_token, setup.password, "Hello, metrics"):
        assert secret not in text
    assert f'"{setup.username}"' not in text, "no user name as a label value"
