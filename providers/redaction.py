"""One place that removes secrets from text bound for logs and error reports.

It masks the API keys this process has decrypted (registered by `remember_secret`)
and the common shapes of keys, so a key that slips into a message, an exception or
a traceback is still never written out.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from django.utils.safestring import SafeString, mark_safe
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

MASK = "[REDACTED]"
# Each shape is (prefix kept)(secret masked).
_KEY_SHAPES = re.compile(
    r"""
    ()(sk-ant-[A-Za-z0-9_\-]{8,})                         # Anthropic
    | ()(sk-[A-Za-z0-9_\-]{8,})                           # OpenAI, DeepSeek, most compatibles
    | (Bearer\s+)([A-Za-z0-9._~+/=\-]{6,})                # Authorization headers
    | ([?&](?:key|api_key|apikey|token)=)([^&\s'"]+)      # keys in URLs
    | (x-api-key["']?\s*[:=]\s*["']?)([^\s'"]+)         # Anthropic's header
    """,
    re.VERBOSE | re.IGNORECASE,
)


def _mask_match(match: re.Match[str]) -> str:
    prefix = next((g for g in match.groups()[::2] if g), "")
    return prefix + MASK


# The api_key the SDK clients of a provider stored without a key get (an SDK will not
# build a client without one). It is never sent (see openai_adapter) and, should it be
# written anywhere, masked like a key: a reader must not take it for a real one.
NO_KEY_PLACEHOLDER = "switchboard-no-api-key"

_live_secrets: set[str] = {NO_KEY_PLACEHOLDER}
_lock = threading.Lock()
_MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words


def remember_secret(value: str) -> None:
    """Register a decrypted secret so that any later log line masks it."""
    if len(value) >= _MIN_SECRET_LENGTH:
        with _lock:
            _live_secrets.add(value)


def redact(text: str) -> str:
    for secret in tuple(_live_secrets):
        if secret in text:
            text = text.replace(secret, MASK)
    return _KEY_SHAPES.sub(_mask_match, text)


def mask_key(key: str) -> str:
    """The short form shown in lists: first 3 and last 4 characters, e.g. ``sk-…9f2c``."""
    if len(key) < 12:
        return "…" + key[-2:] if len(key) > 4 else "…"
    return f"{key[:3]}…{key[-4:]}"


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites each record's message and traceback redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        if record.exc_info and record.exc_info[0] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)
            # Keep the exception type for handlers that need it, drop the frames.
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class RedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Error reports (debug pages, admin e-mails) with secrets masked everywhere."""

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        # str(): a lazy string (SimpleLazyObject passes isinstance) is no str to a regex.
        return redact(str(cleansed)) if isinstance(cleansed, str) else cleansed

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, _redact_value(value)) for name, value in variables]


def _redact_value(value: Any) -> Any:
    return redact(str(value)) if isinstance(value, str) else value


class RedactingExceptionReporter(ExceptionReporter):
    """Error reports whose whole text, exception messages included, is redacted."""

    def get_traceback_html(self) -> SafeString:
        return mark_safe(redact(super().get_traceback_html()))  # noqa: S308 (already escaped)

    def get_traceback_text(self) -> SafeString:
        return mark_safe(redact(super().get_traceback_text()))  # noqa: S308
