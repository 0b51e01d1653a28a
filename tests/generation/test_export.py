"""A conversation exported as Markdown and as JSON: what the owner downloads, and that
nobody else can."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from markdown_it import MarkdownIt

from generation.models import Conversation, Message
from providers.adapters.base import Attempt, GenerationResult, Usage
from providers.errors import ERROR_WORDS, ErrorKind
from usage.services import record_generation

pytestmark = pytest.mark.django_db

EXPORTS = ["generation:export_markdown", "generation:export_json"]


def _answer(conversation, provider, user, *, attempts: list[Attempt], **fields) -> Message:
    """An assistant message with usage records written by the real metering service."""
    question = Message.objects.create(
        conversation=conversation,
        parent=conversation.messages.last(),  # one branch, as the chat makes it
        role="user",
        content=fields.pop("question"),
    )
    message = Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        provider=provider,
        model="fake-model",
        finished_at=timezone.now(),
        **fields,
    )
    result = GenerationResult(text=message.content, model="fake-model", attempts=attempts)
    record_generation(provider=provider, user=user, source="chat", result=result, message=message)
    return message


@pytest.fixture
def conversation(user, make_chat_provider, price_fake_model) -> Conversation:
    """Three answers: complete (priced, after a retried 429), failed, and stopped."""
    provider = make_chat_provider(name="Fake Cloud")
    price_fake_model(provider)
    conversation = Conversation.objects.create(owner=user, title="Switchboards")
    _answer(
        conversation,
        provider,
        user,
        question="What is a switchboard?\n# Not a heading",
        content="A panel.\n\n```python\nprint('hi')\n```\n\n## Not a section",
        status="complete",
        input_tokens=1000,
        output_tokens=500,
        attempts=[
            Attempt(number=1, outcome="rate_limit", status_code=429),
            Attempt(number=2, outcome="ok", usage=Usage(input_tokens=1000, output_tokens=500)),
        ],
    )
    _answer(
        conversation,
        provider,
        user,
        question="And another?",
        content="",
        status="failed",
        error_kind=ErrorKind.RATE_LIMIT,
        attempts=[Attempt(number=1, outcome="rate_limit", status_code=429)],
    )
    _answer(
        conversation,
        provider,
        user,
        question="Tell me more",
        content="Switchboards were",
        status="cancelled",
        input_tokens=100,
        output_tokens=20,
        usage_estimated=True,
        attempts=[
            Attempt(
                number=1,
                outcome="cancelled",
                usage=Usage(input_tokens=100, output_tokens=20, estimated=True),
            )
        ],
    )
    return conversation


def _get(client, name: str, conversation_id: int):
    return client.get(reverse(name, args=[conversation_id]))


def test_json_export_has_every_message_with_its_usage_and_cost(client, user, conversation):
    client.force_login(user)
    response = _get(client, "generation:export_json", conversation.pk)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == (
        f'attachment; filename="switchboards-{conversation.pk}.json"'
    )
    assert response["X-Content-Type-Options"] == "nosniff"
    data = json.loads(response.content)
    assert list(data) == ["conversation", "messages", "totals"]
    assert data["conversation"]["id"] == conversation.pk
    assert data["conversation"]["title"] == "Switchboards"
    assert data["conversation"]["created_at"] == conversation.created_at.isoformat()

    messages = data["messages"]
    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "complete"),
        ("user", "complete"),
        ("assistant", "failed"),
        ("user", "complete"),
        ("assistant", "cancelled"),
    ]
    question, answer, _, failed, _, stopped = messages
    assert list(answer) == [
        "role",
        "content",
        "status",
        "model",
        "provider",
        "alias",
        "created_at",
        "finished_at",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "error",
        "attachments",
    ]
    assert question["content"] == "What is a switchboard?\n# Not a heading"
    assert question["model"] is None
    assert question["cost_usd"] is None
    assert answer["content"].startswith("A panel.")
    assert (answer["model"], answer["provider"]) == ("fake-model", "Fake Cloud")
    assert (answer["input_tokens"], answer["output_tokens"]) == (1000, 500)
    # 1000 in at $2/M + 500 out at $8/M; the 429 before it cost nothing.
    assert answer["cost_usd"] == "0.006"
    assert answer["error"] is None
    assert answer["attachments"] == []
    assert failed["error"] == {"kind": "rate_limit", "message": ERROR_WORDS[ErrorKind.RATE_LIMIT]}
    assert failed["cost_usd"] == "0"
    assert stopped["content"] == "Switchboards were"
    assert stopped["cost_usd"] == "0.00036"  # 100 in, 20 out (estimated)
    assert stopped["finished_at"] is not None
    assert data["totals"] == {"input_tokens": 1100, "output_tokens": 520, "cost_usd": "0.00636"}


def test_json_export_says_an_unpriced_cost_is_unknown(client, user, make_chat_provider):
    provider = make_chat_provider()  # fake-model has no price here
    conversation = Conversation.objects.create(owner=user, title="t")
    ok = Attempt(number=1, outcome="ok", usage=Usage(input_tokens=10, output_tokens=5))
    _answer(
        conversation, provider, user, question="q", content="a", status="complete", attempts=[ok]
    )
    client.force_login(user)
    data = json.loads(_get(client, "generation:export_json", conversation.pk).content)
    assert data["messages"][1]["cost_usd"] is None
    assert data["totals"]["cost_usd"] is None  # not a sum that leaves the unknown out


def test_markdown_export_keeps_each_message_verbatim_in_its_section(client, user, conversation):
    client.force_login(user)
    response = _get(client, "generation:export_markdown", conversation.pk)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="switchboards-{conversation.pk}.md"'
    )
    assert response["X-Content-Type-Options"] == "nosniff"
    text = response.content.decode()
    tokens = MarkdownIt("commonmark").parse(text)
    # The document's structure: the title and one section per message, none from contents.
    headings = [
        (token.tag, tokens[i + 1].content)
        for i, token in enumerate(tokens)
        if token.type == "heading_open"
    ]
    answer_heading = ("h2", "Assistant · fake-model via Fake Cloud")
    assert headings == [("h1", "Switchboards"), *[("h2", "User"), answer_heading] * 3]
    # Each content exactly as written, in a fence longer than any of its own.
    fences = [(token.info, token.content) for token in tokens if token.type == "fence"]
    assert fences == [
        ("text", "What is a switchboard?\n# Not a heading\n"),
        ("markdown", "A panel.\n\n```python\nprint('hi')\n```\n\n## Not a section\n"),
        ("text", "And another?\n"),
        ("text", "Tell me more\n"),
        ("markdown", "Switchboards were\n"),
    ]
    # The notes: the summary, then each message's time, usage and state.
    notes = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "paragraph_open"]
    assert len(notes) == 10
    summary, _, answer, _, failed, failed_state, no_text, _, stopped, stopped_state = notes
    assert "6 messages · 1100 in · 520 out · $0.00636" in summary
    assert answer.endswith("· 1000 in · 500 out · $0.0060*")
    assert failed.endswith("· $0.0000*")  # the 429 reached the provider: metered, free
    assert failed_state == f"**Failed:** {ERROR_WORDS[ErrorKind.RATE_LIMIT]}"
    assert no_text == "*(no text)*"
    assert stopped.endswith("· 100 in · 20 out (estimated) · $0.0004*")
    assert stopped_state == "**Stopped** before the end."


@pytest.mark.parametrize("name", EXPORTS)
def test_another_users_export_is_not_found(client, other_user, conversation, name):
    client.force_login(other_user)
    assert _get(client, name, conversation.pk).status_code == 404
    assert _get(client, name, conversation.pk + 1000).status_code == 404


@pytest.mark.parametrize("name", EXPORTS)
def test_anonymous_export_goes_to_the_login_page(client, conversation, name):
    response = _get(client, name, conversation.pk)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", EXPORTS)
def test_export_refuses_anything_but_get(client, user, conversation, name):
    client.force_login(user)
    assert client.post(reverse(name, args=[conversation.pk])).status_code == 405


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ('He said "hi"\r\nSet-Cookie: x=1 / ../../etc', "he-said-hi-set-cookie-x1-etc"),
        ("🎉🎉", "conversation"),
        ("Ça va? ünïcode/slash\\back", "ca-va-unicodeslashback"),
        ("", "conversation"),
    ],
)
def test_a_hostile_title_gives_a_safe_filename(client, user, title, slug):
    conversation = Conversation.objects.create(owner=user, title=title)
    client.force_login(user)
    for name, extension in zip(EXPORTS, ["md", "json"], strict=True):
        disposition = _get(client, name, conversation.pk)["Content-Disposition"]
        assert disposition == f'attachment; filename="{slug}-{conversation.pk}.{extension}"'


def test_a_hostile_title_stays_one_heading_in_markdown(client, user):
    conversation = Conversation.objects.create(owner=user, title="Evil\n## Injected *bold* `x`")
    client.force_login(user)
    text = _get(client, "generation:export_markdown", conversation.pk).content.decode()
    assert text.splitlines()[0] == r"# Evil \#\# Injected \*bold\* \`x\`"


def test_a_long_title_is_cut_in_the_filename(client, user):
    conversation = Conversation.objects.create(owner=user, title="word " * 24)
    client.force_login(user)
    disposition = _get(client, "generation:export_json", conversation.pk)["Content-Disposition"]
    filename = disposition.split('filename="')[1].rstrip('"')
    assert len(filename) <= 60 + len(f"-{conversation.pk}.json")
    assert not filename.startswith("-")
    assert "--" not in filename


@pytest.mark.parametrize("name", EXPORTS)
def test_export_reads_a_fixed_number_of_queries(client, user, conversation, name):
    client.force_login(user)
    with CaptureQueriesContext(connection) as short:
        assert _get(client, name, conversation.pk).status_code == 200
    provider = Message.objects.filter(role="assistant").first().provider
    for number in range(20):
        ok = Attempt(number=1, outcome="ok", usage=Usage(input_tokens=1, output_tokens=1))
        _answer(
            conversation,
            provider,
            user,
            question=f"q{number}",
            content="a",
            status="complete",
            attempts=[ok],
        )
    with CaptureQueriesContext(connection) as long:
        assert _get(client, name, conversation.pk).status_code == 200
    assert len(long) == len(short) <= 4  # session, user, conversation, messages


def test_the_chat_header_links_to_both_exports(client, user, conversation):
    client.force_login(user)
    page = client.get(reverse("generation:conversation", args=[conversation.pk])).content.decode()
    assert f'href="/c/{conversation.pk}/export.md"' in page
    assert f'href="/c/{conversation.pk}/export.json"' in page
    new_chat = client.get(reverse("generation:index")).content.decode()
    assert "export.md" not in new_chat


def test_a_chat_started_on_the_page_gets_its_export_links(client, user, make_chat_provider):
    provider = make_chat_provider()
    client.force_login(user)
    data = {"text": "Hello", "provider": provider.pk, "model": "", "conversation": ""}
    response = client.post(reverse("generation:send"), data, headers={"HX-Request": "true"})
    conversation = Conversation.objects.get(owner=user)
    body = response.content.decode()
    assert 'id="chat-export"' in body
    assert 'hx-swap-oob="true"' in body.split('id="chat-export"')[1].split(">")[0]
    assert f'href="/c/{conversation.pk}/export.md"' in body
    # Later messages of that chat leave the header alone.
    data["conversation"] = str(conversation.pk)
    response = client.post(reverse("generation:send"), data, headers={"HX-Request": "true"})
    assert 'id="chat-export"' not in response.content.decode()
