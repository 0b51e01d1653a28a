from __future__ import annotations

import io
import logging

import pytest
from django.test import Client, override_settings
from django.urls import path

from providers.models import Provider
from providers.redaction import MASK, RedactingFilter, redact

KEY = "custom-key-without-a-known-shape-77aa"


def _explode(request):
    provider = Provider.objects.get()
    key = provider.get_api_key()
    raise RuntimeError(f"upstream refused {key}")


urlpatterns = [path("explode/", _explode)]


@pytest.mark.parametrize(
    "text",
    [
        "sk-proj-abcdefghijklmnop",
        "sk-ant-api03-abcdefghijklmnop",
        "Authorization: Bearer abcdefghijkl.mnop",
        "https://api.example.com/v1?key=abcdef123456&x=1",
        "x-api-key: abcdef123456",
    ],
)
def test_common_key_shapes_are_masked(text):
    secret = text.split()[-1].split("key=")[-1].split("&")[0]
    assert secret not in redact(text)
    assert MASK in redact(text)


def test_a_decrypted_key_of_any_shape_is_masked_once_known(make_provider):
    provider = make_provider("Custom", KEY, kind="openai_compatible", base_url="http://x.test")
    Provider.objects.get(pk=provider.pk).get_api_key()
    assert redact(f"failed with {KEY}!") == f"failed with {MASK}!"


def _handler_output(logger_name: str, emit) -> str:
    handler = logging.getLogger(logger_name).handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    assert any(isinstance(f, RedactingFilter) for f in handler.filters)
    stream = io.StringIO()
    old = handler.setStream(stream)
    try:
        emit()
    finally:
        handler.setStream(old)
    return stream.getvalue()


def test_log_messages_and_tracebacks_are_redacted(make_provider):
    provider = make_provider("Custom", KEY, kind="openai_compatible", base_url="http://x.test")
    key = Provider.objects.get(pk=provider.pk).get_api_key()
    logger = logging.getLogger("switchboard.test")

    def emit():
        logger.warning("calling with %s", key)
        try:
            raise ValueError(f"bad key {key}")
        except ValueError:
            logger.exception("call failed")

    output = _handler_output("", emit)
    assert "ValueError" in output
    assert "call failed" in output
    assert key not in output


@pytest.mark.urls(__name__)
def test_a_forced_error_page_and_its_log_never_show_the_key(make_provider):
    make_provider("Custom", KEY, kind="openai_compatible", base_url="http://x.test")
    client = Client(raise_request_exception=False)
    responses = []
    output = _handler_output("django.request", lambda: responses.append(client.get("/explode/")))
    assert responses[0].status_code == 500
    assert KEY not in responses[0].content.decode()
    assert "RuntimeError" in output
    assert KEY not in output


@pytest.mark.urls(__name__)
def test_the_debug_error_page_masks_the_key_in_frames(make_provider):
    make_provider("Custom", KEY, kind="openai_compatible", base_url="http://x.test")
    client = Client(raise_request_exception=False)
    with override_settings(DEBUG=True):
        response = client.get("/explode/")
    body = response.content.decode()
    assert response.status_code == 500
    assert "upstream refused" in body  # the technical page really rendered
    assert KEY not in body


@pytest.fixture
def server_logging(settings):
    """Logging as a web process has it: uvicorn configures its loggers first, then
    importing the app runs Django's setup, which applies LOGGING."""
    import copy
    import logging.config

    from uvicorn.config import LOGGING_CONFIG

    logging.config.dictConfig(copy.deepcopy(LOGGING_CONFIG))
    logging.config.dictConfig(copy.deepcopy(settings.LOGGING))
    yield
    logging.config.dictConfig(copy.deepcopy(settings.LOGGING))


def _handlers_reached(name: str) -> list[logging.Handler]:
    """The handlers a record logged on `name` is written by (pytest's own left out)."""
    found: list[logging.Handler] = []
    logger: logging.Logger | None = logging.getLogger(name)
    while logger is not None:
        found += [h for h in logger.handlers if not type(h).__module__.startswith("_pytest")]
        logger = logger.parent if logger.propagate else None
    return found


@pytest.mark.parametrize(
    "name", ["uvicorn.error", "uvicorn.access", "uvicorn.asgi", "huey", "huey.consumer"]
)
def test_the_servers_own_loggers_are_redacted_too(server_logging, name):
    handlers = _handlers_reached(name)
    assert handlers
    stream = io.StringIO()
    old_streams = [handler.setStream(stream) for handler in handlers]
    try:
        logging.getLogger(name).error("upstream refused sk-proj-abcdefgh12345678")
    finally:
        for handler, old in zip(handlers, old_streams, strict=True):
            handler.setStream(old)
    written = stream.getvalue()
    assert written.count("upstream refused") == 1  # once: no second, plain handler
    assert "sk-proj-abcdefgh12345678" not in written
    assert MASK in written


def test_run_huey_adds_no_unfiltered_handler(server_logging):
    # huey's run_huey gives the "huey" logger a plain handler of its own when it has
    # none (every line was then written twice, once unmasked): it must have ours.
    own = [h for h in logging.getLogger("huey").handlers if h in _handlers_reached("huey")]
    assert own
    assert all(any(isinstance(f, RedactingFilter) for f in h.filters) for h in own)
