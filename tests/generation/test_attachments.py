"""Files attached to a chat message: checked by their bytes, stored with the message,
sent to the provider as image and file parts, served only to their owner and never as
a page of ours."""

from __future__ import annotations

import base64
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from huey.contrib.djhuey import HUEY
from PIL import Image

from generation import services
from generation.attachments import Attachment, AttachmentBlob
from generation.models import Conversation, Message
from generation.uploads import UploadRefused, check_uploads, safe_name
from providers.errors import IMAGES_NOT_ACCEPTED, ErrorKind
from providers.fake_upstream.app import IMAGE_TOKENS
from tests.generation.attachment_files import EXE, HTML, SVG, image_bytes, pdf_bytes
from tests.generation.conftest import wait_for

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
MB = 1024 * 1024
PDF_TEXT = "Quarterly numbers: revenue up 12 percent"


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    HUEY.storage.flush_queue()
    return client


def _send(client, provider, *files, text="What is in these?", conversation=""):
    data = {
        "text": text,
        "provider": provider.pk,
        "model": "",
        "conversation": conversation,
        "attachments": list(files),
    }
    return client.post(reverse("generation:send"), data, headers=HX)


def _file(name: str, data: bytes, content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def _final(message_id: int) -> Message:
    wait_for(lambda: Message.objects.get(pk=message_id).status not in Message.ACTIVE)
    return Message.objects.get(pk=message_id)


def _nothing_stored() -> None:
    assert not Message.objects.exists()
    assert not Conversation.objects.exists()
    assert not Attachment.objects.exists()
    assert not AttachmentBlob.objects.exists()


def _refusal(response) -> str:
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#composer-error"
    return response.content.decode()


# --- What is accepted, and how it is stored --------------------------------------------

ACCEPTED = [
    ("photo.png", image_bytes("PNG"), "image/png", "image", "image/png"),
    ("photo.jpg", image_bytes("JPEG"), "image/jpeg", "image", "image/jpeg"),
    ("photo.webp", image_bytes("WEBP"), "image/webp", "image", "image/webp"),
    ("loop.gif", image_bytes("GIF"), "image/gif", "image", "image/gif"),
    # A pasted image has whatever name and type the browser gives: the bytes decide.
    ("blob", image_bytes("PNG"), "application/octet-stream", "image", "image/png"),
    ("notes.txt", b"Remember the milk.\n", "text/plain", "file", "text/plain"),
    ("README.md", "# Título\n\n- one\n".encode(), "text/markdown", "file", "text/plain"),
    ("sales.csv", b"month,total\nMay,12\n", "text/csv", "file", "text/plain"),
    ("data.json", b'{"a": [1, 2]}', "application/json", "file", "text/plain"),
    ("main.py", b"def f():\n\treturn 1\n", "text/x-python", "file", "text/plain"),
    ("report.pdf", pdf_bytes(PDF_TEXT), "application/pdf", "file", "application/pdf"),
]


@pytest.mark.parametrize(
    ("name", "data", "claimed", "kind", "media_type"),
    ACCEPTED,
    ids=[row[0] for row in ACCEPTED],
)
def test_each_accepted_type_is_stored_as_its_bytes_say(
    logged_in, make_chat_provider, name, data, claimed, kind, media_type
):
    response = _send(logged_in, make_chat_provider(), _file(name, data, claimed))
    assert response.status_code == 200
    assert "HX-Retarget" not in response
    attachment = Attachment.objects.get()
    assert (attachment.kind, attachment.media_type) == (kind, media_type)
    assert attachment.name == name
    assert attachment.size == len(data)
    assert attachment.message.content == "What is in these?"
    blob = AttachmentBlob.objects.get(attachment=attachment)
    assert bytes(blob.data) == data
    if kind == "image":
        assert bytes(blob.thumbnail)[:4] == b"RIFF"  # a small WebP
        assert len(blob.thumbnail) < len(data)
        assert max(attachment.thumb_width, attachment.thumb_height) == 320
        assert attachment.text == ""
    else:
        expected = PDF_TEXT if name.endswith(".pdf") else data.decode()
        assert attachment.text == expected
    # The answer it started waits for the worker, as any message's does.
    assert Message.objects.get(role="assistant").status == Message.Status.PENDING


def test_a_message_may_be_attachments_alone(logged_in, user, make_chat_provider):
    png = image_bytes("PNG")
    response = _send(logged_in, make_chat_provider(), _file("cat.png", png), text="")
    assert "HX-Retarget" not in response
    conversation = Conversation.objects.get(owner=user)
    assert conversation.title == "cat.png"
    question = conversation.messages.get(role="user")
    assert question.content == ""
    answer = conversation.messages.get(role="assistant")
    user_turn = answer.request["messages"][-1]
    assert [part["type"] for part in user_turn["parts"]] == ["image"]
    assert base64.b64decode(user_turn["parts"][0]["data"]) == png


def test_neither_text_nor_files_is_refused_in_words(logged_in, make_chat_provider):
    page = _refusal(_send(logged_in, make_chat_provider(), text="  "))
    assert "Write a message first." in page
    _nothing_stored()


@pytest.mark.django_db(transaction=True)
def test_the_provider_receives_the_image_and_the_files_text(
    user, client, make_chat_provider, huey_consumer, fake_upstream
):
    client.force_login(user)
    png = image_bytes("PNG")
    files = [
        _file("chart.png", png, "image/png"),
        _file("notes.md", b"# Notes\nship it\n", "text/markdown"),
        _file("report.pdf", pdf_bytes(PDF_TEXT), "application/pdf"),
    ]
    _send(client, make_chat_provider(), *files, text="Summarise these.")
    answer = _final(Message.objects.get(role="assistant").pk)
    assert answer.status == Message.Status.COMPLETE

    body = [r for r in fake_upstream.requests if r.path == "/v1/chat/completions"][-1].body
    content = body["messages"][-1]["content"]
    assert content == [
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode()},
        },
        {"type": "text", "text": "<file name='notes.md'>\n# Notes\nship it\n\n</file>"},
        {"type": "text", "text": f"<file name='report.pdf'>\n{PDF_TEXT}\n</file>"},
        {"type": "text", "text": "Summarise these."},
    ]
    # Metering reads the provider's count, which includes the image.
    assert answer.input_tokens >= IMAGE_TOKENS
    # The stored request (base64 images and all) is cleared once the answer ends.
    assert answer.request is None

    # The next message sends the history again, the image with it.
    conversation = answer.conversation
    _send(client, answer.provider, text="And now?", conversation=str(conversation.pk))
    wait_for(lambda: not conversation.messages.filter(status__in=Message.ACTIVE).exists())
    again = [r for r in fake_upstream.requests if r.path == "/v1/chat/completions"][-1].body
    first_turn = again["messages"][0]["content"]
    assert first_turn[0]["type"] == "image_url"
    assert again["messages"][-1] == {"role": "user", "content": "And now?"}


@pytest.mark.django_db(transaction=True)
def test_an_edited_question_keeps_its_attachments(
    user, client, make_chat_provider, huey_consumer, fake_upstream
):
    client.force_login(user)
    png = image_bytes("PNG")
    provider = make_chat_provider()
    _send(client, provider, _file("chart.png", png, "image/png"), text="What is this?")
    first = _final(Message.objects.get(role="assistant").pk)
    question = first.parent
    assert question is not None

    edited = client.post(
        reverse("generation:edit", args=[question.pk]),
        {"text": "What colour is this?", "provider": provider.pk, "model": ""},
        headers=HX,
    )
    assert edited.status_code == 200
    new_question = Message.objects.filter(role="user").exclude(pk=question.pk).get()
    answer = _final(Message.objects.get(parent=new_question).pk)
    assert answer.status == Message.Status.COMPLETE
    # A copy, with its bytes: the new version and the old each keep their own.
    (copy,) = new_question.attachments.all()
    assert (copy.name, copy.blob.data) == ("chart.png", png)
    assert question.attachments.count() == 1
    body = [r for r in fake_upstream.requests if r.path == "/v1/chat/completions"][-1].body
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode()},
                },
                {"type": "text", "text": "What colour is this?"},
            ],
        }
    ]
    # The thread shows the edited version with its thumbnail.
    page = client.get(reverse("generation:conversation", args=[answer.conversation_id]))
    assert f"/attachments/{copy.pk}" in page.content.decode()


# --- What is refused: in words, with nothing stored and no call upstream ----------------

REFUSED = [
    ("logo.svg", SVG, "image/svg+xml", "is an SVG image"),
    # An SVG is refused by what it holds, whatever its name says.
    ("drawing.txt", SVG, "text/plain", "is an SVG image"),
    ("cat.png", HTML, "image/png", "is not a PNG, JPEG, WebP or GIF image"),
    ("photo.jpg", image_bytes("PNG")[:200], "image/jpeg", "is not a PNG, JPEG, WebP or GIF"),
    ("setup.exe", EXE, "application/octet-stream", "is not a file Switchboard can read"),
    ("notes.txt", "naïve".encode("latin-1") + bytes(10), "text/plain", "can read"),
    ("utf16.txt", "hello".encode("utf-16"), "text/plain", "is not a file Switchboard can read"),
    ("scan.pdf", pdf_bytes(None), "application/pdf", "has no text to read"),
    ("fake.pdf", b"just words", "application/pdf", "is not a PDF"),
    ("broken.pdf", b"%PDF-1.4\n garbage", "application/pdf", "could not be read as a PDF"),
    ("empty.txt", b"", "text/plain", "is empty"),
]


@pytest.mark.parametrize(
    ("name", "data", "claimed", "words"), REFUSED, ids=[row[0] for row in REFUSED]
)
def test_a_refused_file_is_named_in_words_and_nothing_is_stored(
    logged_in, make_chat_provider, fake_upstream, name, data, claimed, words
):
    provider = make_chat_provider()
    files = [_file("fine.png", image_bytes("PNG"), "image/png"), _file(name, data, claimed)]
    page = _refusal(_send(logged_in, provider, *files))
    assert words in page
    assert name in page
    _nothing_stored()
    assert fake_upstream.calls == 0
    assert HUEY.pending_count() == 0
    from usage.models import UsageRecord

    assert not UsageRecord.objects.exists()


def test_too_many_files_are_refused(logged_in, make_chat_provider):
    files = [_file(f"n{i}.txt", b"x", "text/plain") for i in range(9)]
    page = _refusal(_send(logged_in, make_chat_provider(), *files))
    assert "at most 8 files (this one has 9)" in page
    _nothing_stored()


def test_forty_files_get_our_words_not_a_bare_400(logged_in, make_chat_provider):
    files = [_file(f"n{i}.txt", b"x", "text/plain") for i in range(40)]
    page = _refusal(_send(logged_in, make_chat_provider(), *files))
    assert "at most 8 files" in page


def test_a_file_over_the_size_limit_gets_our_words_not_a_400(logged_in, make_chat_provider):
    big = _file("huge.txt", b"a" * (10 * MB + 1), "text/plain")
    page = _refusal(_send(logged_in, make_chat_provider(), big))
    assert "“huge.txt” is 10.0\xa0MB: a file can be at most 10.0\xa0MB." in page
    _nothing_stored()


def test_files_over_the_total_limit_are_refused(logged_in, make_chat_provider):
    files = [_file(f"part{i}.txt", b"a" * (7 * MB), "text/plain") for i in range(3)]
    page = _refusal(_send(logged_in, make_chat_provider(), *files))
    assert "can be at most 20.0\xa0MB together" in page
    _nothing_stored()


def test_the_limits_come_from_settings(logged_in, make_chat_provider, settings):
    settings.SWITCHBOARD = {
        **settings.SWITCHBOARD,
        "ATTACHMENTS_PER_MESSAGE": 1,
        "ATTACHMENT_MAX_BYTES": 100,
    }
    provider = make_chat_provider()
    two = [_file("a.txt", b"a", "text/plain"), _file("b.txt", b"b", "text/plain")]
    assert "at most 1 files" in _refusal(_send(logged_in, provider, *two))
    big = _file("c.txt", b"c" * 101, "text/plain")
    assert "a file can be at most 100\xa0bytes" in _refusal(_send(logged_in, provider, big))
    _nothing_stored()


def test_a_file_with_more_text_than_a_message_may_hold_is_refused(
    logged_in, make_chat_provider, settings
):
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "MAX_PROMPT_CHARS": 50}
    page = _refusal(_send(logged_in, make_chat_provider(), _file("log.txt", b"x" * 51)))
    assert "“log.txt” holds 51 characters of text" in page
    _nothing_stored()


# --- Names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\notes.txt", "notes.txt"),
        ("a\x00b.txt", "ab.txt"),
        ("bad\r\nX-Injected: 1.txt", "badX-Injected: 1.txt"),
        ("\u202egnp.exe", "gnp.exe"),  # a right-to-left override hid the real extension
        ("tab\tand\x7fdel.md", "tabanddel.md"),
        ("..", "file"),
        ("  .hidden.txt  ", "hidden.txt"),
        ("", "file"),
        ("x" * 300 + ".csv", "x" * 196 + ".csv"),
        ("日本語のメモ.txt", "日本語のメモ.txt"),
    ],
)
def test_a_hostile_name_becomes_a_plain_name(raw, shown):
    assert safe_name(raw) == shown


def _multipart(provider, files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A form post written by hand: Django's test client would clean the names itself."""
    boundary = b"sb-attach-boundary"
    fields = {"text": b"Look", "provider": str(provider.pk).encode(), "model": b""}
    body = b""
    for field, value in fields.items():
        body += b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (
            boundary,
            field.encode(),
            value,
        )
    for filename, data in files:
        body += (
            b'--%s\r\nContent-Disposition: form-data; name="attachments"; filename="%s"\r\n'
            b"Content-Type: text/plain\r\n\r\n%s\r\n" % (boundary, filename.encode(), data)
        )
    body += b"--%s--\r\n" % boundary
    return body, f"multipart/form-data; boundary={boundary.decode()}"


def test_hostile_names_sent_by_a_browser_are_stored_safely(logged_in, make_chat_provider):
    names = [
        "../../etc/passwd.txt",
        "..\\..\\windows\\win.ini.txt",
        "a\x01b\x7fc.txt",
        "<img src=x onerror=alert(1)>.txt",
        '"quoted"; name=evil.txt',
    ]
    body, content_type = _multipart(make_chat_provider(), [(n, b"hi") for n in names])
    response = logged_in.post(
        reverse("generation:send"), body, content_type=content_type, headers=HX
    )
    assert "HX-Retarget" not in response, response.content.decode()
    stored = list(Attachment.objects.values_list("name", flat=True))
    assert len(stored) == len(names)
    for name in stored:
        assert "/" not in name
        assert "\\" not in name
        assert name.isprintable()
        assert not name.startswith(".")
    assert stored[0] == "passwd.txt"
    # Shown escaped in the thread; put in a header quoted.
    page = logged_in.get(reverse("generation:conversation", args=[Conversation.objects.get().pk]))
    assert b"<img src=x" not in page.content
    assert b"&lt;img src=x onerror=alert(1)&gt;.txt" in page.content
    for attachment in Attachment.objects.all():
        served = logged_in.get(reverse("generation:attachment", args=[attachment.pk]))
        assert "\n" not in served["Content-Disposition"]
        assert served["Content-Disposition"].startswith("attachment; filename")


# --- The thread, and serving ------------------------------------------------------------


def _sent_attachments(client, provider) -> dict[str, Attachment]:
    files = [
        _file("chart.png", image_bytes("PNG"), "image/png"),
        _file("report.pdf", pdf_bytes(PDF_TEXT), "application/pdf"),
        _file("page.html", HTML, "text/html"),
    ]
    _send(client, provider, *files)
    return {attachment.name: attachment for attachment in Attachment.objects.all()}


def test_the_thread_shows_thumbnails_and_file_chips_after_a_reload(logged_in, make_chat_provider):
    attachments = _sent_attachments(logged_in, make_chat_provider())
    image, pdf = attachments["chart.png"], attachments["report.pdf"]
    conversation = Conversation.objects.get()
    page = logged_in.get(reverse("generation:conversation", args=[conversation.pk]))
    html = page.content.decode()
    thumb = reverse("generation:attachment_thumbnail", args=[image.pk])
    full = reverse("generation:attachment", args=[image.pk])
    assert f'<img src="{thumb}" alt="chart.png" width="320" height="240"' in html
    assert f'href="{full}" target="_blank"' in html
    assert f'href="{reverse("generation:attachment", args=[pdf.pk])}" download' in html
    assert "report.pdf" in html
    assert "page.html" in html
    assert html.count('class="attachment attachment--file"') == 2


def test_the_owner_gets_the_image_inline_under_a_sandbox(logged_in, make_chat_provider):
    image = _sent_attachments(logged_in, make_chat_provider())["chart.png"]
    response = logged_in.get(reverse("generation:attachment", args=[image.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == 'inline; filename="chart.png"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response.content == image_bytes("PNG")

    thumb = logged_in.get(reverse("generation:attachment_thumbnail", args=[image.pk]))
    assert thumb.status_code == 200
    assert thumb["Content-Type"] == "image/webp"
    assert thumb["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert thumb.content[:4] == b"RIFF"
    assert len(thumb.content) < len(response.content)


def test_an_html_file_is_served_as_a_plain_text_download(logged_in, make_chat_provider):
    page = _sent_attachments(logged_in, make_chat_provider())["page.html"]
    response = logged_in.get(reverse("generation:attachment", args=[page.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="page.html"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response.content == HTML
    # A file has no thumbnail.
    thumb = logged_in.get(reverse("generation:attachment_thumbnail", args=[page.pk]))
    assert thumb.status_code == 404


def test_a_pdf_is_served_as_a_download(logged_in, make_chat_provider):
    pdf = _sent_attachments(logged_in, make_chat_provider())["report.pdf"]
    response = logged_in.get(reverse("generation:attachment", args=[pdf.pk]))
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="report.pdf"'


def test_another_user_gets_a_404_and_a_visitor_the_sign_in(
    logged_in, client, make_chat_provider, other_user
):
    image = _sent_attachments(logged_in, make_chat_provider())["chart.png"]
    urls = [
        reverse("generation:attachment", args=[image.pk]),
        reverse("generation:attachment_thumbnail", args=[image.pk]),
    ]
    client.logout()
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    client.force_login(other_user)
    for url in urls:
        assert client.get(url).status_code == 404


def test_attachments_go_with_their_conversation(logged_in, make_chat_provider):
    _sent_attachments(logged_in, make_chat_provider())
    assert AttachmentBlob.objects.count() == 3
    conversation = Conversation.objects.get()
    logged_in.post(reverse("generation:delete", args=[conversation.pk]), headers=HX)
    assert not Attachment.objects.exists()
    assert not AttachmentBlob.objects.exists()


def test_the_export_lists_attachments_by_name(logged_in, make_chat_provider):
    _sent_attachments(logged_in, make_chat_provider())
    conversation = Conversation.objects.get()
    exported = logged_in.get(reverse("generation:export_json", args=[conversation.pk]))
    question = json.loads(exported.content)["messages"][0]
    assert question["attachments"] == ["chart.png", "report.pdf", "page.html"]
    markdown = logged_in.get(reverse("generation:export_markdown", args=[conversation.pk]))
    assert "Attached: chart.png, report.pdf, page.html" in markdown.content.decode()


# --- A model without vision -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_model_without_vision_fails_in_words_and_another_model_answers_the_retry(
    user, client, make_chat_provider, huey_consumer, fake_upstream
):
    client.force_login(user)
    text_only = make_chat_provider("text_only=1", name="No vision")
    vision = make_chat_provider(name="Vision")
    png = image_bytes("PNG")
    _send(client, text_only, _file("cat.png", png, "image/png"), text="Who is this?")
    failed = _final(Message.objects.get(role="assistant").pk)

    assert failed.status == Message.Status.FAILED
    assert failed.error_kind == ErrorKind.BAD_REQUEST
    assert failed.error_text == IMAGES_NOT_ACCEPTED
    # The question and its image stay.
    question = Message.objects.get(role="user")
    assert question.attachments.get().name == "cat.png"
    page = client.get(reverse("generation:conversation", args=[failed.conversation_id]))
    html = page.content.decode()
    assert "This model does not accept images. Try a model with vision." in html
    assert "Retry with the model selected below" in html

    retry = reverse("generation:retry", args=[failed.pk])
    response = client.post(retry, {"provider": vision.pk, "model": ""}, headers=HX)
    assert response.status_code == 200
    fresh = _final(Message.objects.get(retry_of=failed).pk)
    assert fresh.status == Message.Status.COMPLETE
    assert fresh.provider == vision
    body = [r for r in fake_upstream.requests if r.path == "/v1/chat/completions"][-1].body
    content = body["messages"][-1]["content"]
    assert content[0]["image_url"]["url"].endswith(base64.b64encode(png).decode())
    assert content[-1] == {"type": "text", "text": "Who is this?"}


# --- Hostile files: bounded work before any refusal --------------------------------------


def test_a_pdf_with_too_many_pages_is_refused_before_any_page_is_read(monkeypatch):
    from pypdf import PdfWriter

    import generation.uploads

    monkeypatch.setattr(generation.uploads, "MAX_PDF_PAGES", 3)
    writer = PdfWriter()
    for _ in range(4):
        writer.add_blank_page(width=100, height=100)
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(UploadRefused) as refused:
        check_uploads([_file("tree.pdf", out.getvalue(), "application/pdf")])
    assert refused.value.message == (
        "“tree.pdf” has 4 pages: a PDF can have at most 3. Attach the part you need."
    )


def test_an_image_over_25_million_pixels_is_refused_before_it_is_decoded():
    huge = io.BytesIO()
    Image.new("1", (6000, 4500)).save(huge, "PNG")  # 27 MP in a few KB
    with pytest.raises(UploadRefused) as refused:
        check_uploads([_file("wall.png", huge.getvalue(), "image/png")])
    assert "6000 by 4500 pixels: an image can have at most 25 million" in refused.value.message


# --- Queries ----------------------------------------------------------------------------


def _history(user, provider, questions: int) -> Message:
    """A conversation of `questions` questions, each with an image and a file, answered;
    then one more question, whose pending answer is returned."""
    conversation = None
    for number in range(questions + 1):
        uploads = check_uploads(
            [
                _file(f"p{number}.png", image_bytes("PNG", (40, 30)), "image/png"),
                _file(f"f{number}.txt", b"some text", "text/plain"),
            ]
        )
        sent = services.send_message(
            user=user,
            conversation=conversation,
            text=f"Question {number}",
            provider=provider,
            model="",
            temperature=None,
            max_tokens=None,
            attachments=uploads,
        )
        conversation = sent.conversation
        Message.objects.filter(pk=sent.assistant_message.pk).update(
            status=Message.Status.COMPLETE, content=f"Answer {number}"
        )
    return sent.assistant_message


def _queries_to_build(message: Message) -> tuple[int, int]:
    message = Message.objects.select_related("conversation").get(pk=message.pk)
    with CaptureQueriesContext(connection) as queries:
        request = services.build_request(message=message)
    images = sum(len(turn.images) for turn in request.messages)
    return len(queries), images


def test_building_the_request_reads_attachments_in_a_fixed_number_of_queries(
    user, make_chat_provider
):
    provider = make_chat_provider()
    short, short_images = _queries_to_build(_history(user, provider, 1))
    Conversation.objects.all().delete()
    long, long_images = _queries_to_build(_history(user, provider, 6))
    assert (short_images, long_images) == (2, 7)
    assert short == long <= 3  # the messages, their attachments, the images' bytes
