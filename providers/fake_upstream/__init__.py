"""A fake LLM provider speaking the OpenAI and Anthropic wire formats, for tests and demos.

See `knobs.py` for the knob syntax (timing, length, text, faults) and `app.py` for the routes.
"""

from __future__ import annotations

from providers.fake_upstream.app import FakeUpstreamApp, RecordedRequest
from providers.fake_upstream.knobs import Knobs
from providers.fake_upstream.server import FakeUpstream
from providers.fake_upstream.wire import FAKE_MODELS

__all__ = ["FAKE_MODELS", "FakeUpstream", "FakeUpstreamApp", "Knobs", "RecordedRequest"]
