"""Attachments in headless Chromium: pasted, dropped and picked files in the composer,
then in the thread, the provider's request, and the page after a reload.

Screenshots land in test-artifacts/ at the repository root.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from generation.attachments import Attachment
from tests.fixtures.browser import screenshot
from tests.generation.attachment_files import SVG, image_bytes, pdf_bytes
from tests.generation.test_browser import ChatServer, _log_in, _send

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PDF_TEXT = "Quarterly numbers: revenue up 12 percent"


@pytest.fixture
def tab(open_page, huey_consumer, user) -> Iterator:
    """A signed-in chat page on a server of its own, as in test_browser.py."""
    server = ChatServer()
    server.start()
    page = open_page(server.url)
    _log_in(page, server.url)
    yield page
    server.stop()


# Hands the composer a file the way the browser does when the user pastes (a
# ClipboardEvent) or drops one (a DragEvent), each carrying a DataTransfer with a File.
GIVE_FILE = """
([how, name, type, base64]) => {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type }));
  const area = document.querySelector("#composer textarea");
  area.focus();
  const event = how === "paste"
    ? new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true })
    : new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true });
  area.dispatchEvent(event);
  return event.defaultPrevented;
}
"""


def _give(tab, how: str, name: str, media_type: str, data: bytes) -> None:
    handled = tab.evaluate(GIVE_FILE, [how, name, media_type, base64.b64encode(data).decode()])
    assert handled, f"the composer took the {how}d file"


def _chat_bodies(fake_upstream) -> list[dict]:
    return [r.body for r in fake_upstream.requests if r.path == "/v1/chat/completions"]


def test_paste_an_image_and_pick_a_pdf_then_see_both_after_a_reload(
    tab, make_chat_provider, fake_upstream
):
    make_chat_provider("tokens=6")
    tab.reload()
    png = image_bytes("PNG")
    _give(tab, "paste", "image.png", "image/png", png)
    tab.wait_for_selector("#composer-attachments .attachment--image img")
    tab.wait_for_function("document.querySelector('#composer-attachments img').naturalWidth > 0")

    tab.set_input_files(
        "#composer-files",
        files=[{"name": "report.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes()}],
    )
    chip = tab.wait_for_selector("#composer-attachments .attachment--file")
    assert "report.pdf" in chip.inner_text()
    # A file picked by mistake goes with its remove button.
    tab.set_input_files(
        "#composer-files",
        files=[{"name": "oops.txt", "mimeType": "text/plain", "buffer": b"wrong one"}],
    )
    tab.wait_for_function("document.querySelectorAll('#composer-attachments li').length === 3")
    screenshot(tab, "attach-composer-three-files")
    tab.click("#composer-attachments [aria-label='Remove oops.txt']")
    tab.wait_for_function("document.querySelectorAll('#composer-attachments li').length === 2")
    assert tab.evaluate("document.querySelector('#composer-files').files.length") == 2
    screenshot(tab, "attach-composer-image-and-pdf")

    _send(tab, "What do these say?")
    tab.wait_for_selector(".message--assistant.is-complete")
    tab.wait_for_function(
        "document.querySelector('.message--user .attachment--image img')?.naturalWidth > 0"
    )
    assert tab.locator("#composer-attachments").is_hidden(), "sent: the composer is empty"
    assert tab.evaluate("document.querySelector('#composer-files').files.length") == 0
    user_bubble = tab.locator(".message--user")
    assert "report.pdf" in user_bubble.locator(".attachment--file").inner_text()
    screenshot(tab, "attach-sent")

    content = _chat_bodies(fake_upstream)[-1]["messages"][-1]["content"]
    assert content[0] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode()},
    }
    assert content[1] == {"type": "text", "text": f"<file name='report.pdf'>\n{PDF_TEXT}\n</file>"}
    assert content[2] == {"type": "text", "text": "What do these say?"}
    assert {a.name for a in Attachment.objects.all()} == {"image.png", "report.pdf"}

    tab.reload()
    thumb = tab.wait_for_selector(".message--user .attachment--image img")
    tab.wait_for_function(
        "document.querySelector('.message--user .attachment--image img').naturalWidth > 0"
    )
    assert thumb.get_attribute("alt") == "image.png"
    assert "report.pdf" in tab.locator(".message--user .attachment--file").inner_text()
    screenshot(tab, "attach-after-reload")

    # The thumbnail opens the full image in a tab of its own, shown as an image.
    with tab.context.expect_page() as opened:
        tab.click(".message--user .attachment--image")
    full = opened.value
    full.wait_for_load_state()
    assert full.evaluate("document.images[0].naturalWidth") == 800
    screenshot(full, "attach-full-image")
    full.close()

    # The PDF chip downloads the file as it was uploaded.
    with tab.expect_download() as download:
        tab.click(".message--user .attachment--file")
    assert download.value.suggested_filename == "report.pdf"


def test_a_dropped_image_is_attached_and_an_svg_is_refused_in_words(
    tab, make_chat_provider, fake_upstream
):
    make_chat_provider("tokens=4")
    tab.reload()
    _give(tab, "drop", "photo.jpg", "image/jpeg", image_bytes("JPEG"))
    tab.wait_for_selector("#composer-attachments .attachment--image img")
    tab.set_input_files(
        "#composer-files",
        files=[{"name": "logo.svg", "mimeType": "image/svg+xml", "buffer": SVG}],
    )
    tab.wait_for_function("document.querySelectorAll('#composer-attachments li').length === 2")
    _send(tab, "Here you go")
    alert = tab.wait_for_selector("#composer-error .alert--error")
    assert "“logo.svg” is an SVG image" in alert.inner_text()
    assert tab.locator(".message").count() == 0
    assert not _chat_bodies(fake_upstream)
    # The files stay for the user to fix: without the SVG the message goes.
    assert tab.locator("#composer-attachments li").count() == 2
    screenshot(tab, "attach-svg-refused")
    tab.click("#composer-attachments [aria-label='Remove logo.svg']")
    _send(tab, "Here you go")
    tab.wait_for_selector(".message--assistant.is-complete")
    assert tab.locator("#composer-error .alert").count() == 0
    assert _chat_bodies(fake_upstream)[-1]["messages"][-1]["content"][0]["type"] == "image_url"


def test_too_many_files_are_refused_before_uploading(tab, make_chat_provider, fake_upstream):
    make_chat_provider("tokens=4")
    tab.reload()
    files = [{"name": f"note{i}.txt", "mimeType": "text/plain", "buffer": b"x"} for i in range(9)]
    tab.set_input_files("#composer-files", files=files)
    alert = tab.wait_for_selector("#composer-error .alert--error")
    assert "at most 8 files" in alert.inner_text()
    assert tab.locator("#composer-attachments li").count() == 0
    screenshot(tab, "attach-too-many")


def test_a_model_without_vision_says_so_and_retry_uses_the_model_picked(
    tab, make_chat_provider, fake_upstream
):
    blind = make_chat_provider("tokens=4&text_only=1", name="Text only")
    seeing = make_chat_provider("tokens=4", name="With vision")
    tab.reload()
    tab.select_option("#composer select[name=provider]", str(blind.pk))
    _give(tab, "paste", "image.png", "image/png", image_bytes("PNG"))
    _send(tab, "What is this?")
    alert = tab.wait_for_selector(".message--assistant .alert--error")
    assert "This model does not accept images. Try a model with vision." in alert.inner_text()
    retry = tab.locator(".message--assistant .retry")
    assert retry.inner_text() == "Retry with the model selected below"
    screenshot(tab, "attach-no-vision")

    tab.select_option("#composer select[name=provider]", str(seeing.pk))
    tab.wait_for_load_state("networkidle")  # the model list of that provider
    retry.click()
    tab.wait_for_selector(".message--assistant.is-complete")
    body = _chat_bodies(fake_upstream)[-1]
    assert body["messages"][-1]["content"][0]["type"] == "image_url"
    # The question and its image stay; the new answer is version 2 beside the failed one.
    assert tab.locator(".message--user .attachment--image img").count() == 1
    assert tab.locator(".versions--assistant .versions__count").inner_text() == "2/2"
    assert tab.locator(".message--assistant.is-failed").count() == 0
    screenshot(tab, "attach-retried-with-vision")
    # One step back shows the failed answer, which now offers no second retry.
    tab.click(".versions--assistant .versions__prev")
    tab.wait_for_selector(".message--assistant.is-failed")
    assert tab.locator(".message--assistant .retry").count() == 0
