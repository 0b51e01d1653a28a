"""The one retry policy for upstream calls (the SDKs' own retries are switched off)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.conf import settings

from providers.errors import ProviderError

DEFAULTS = {
    "RETRY_MAX_ATTEMPTS": 3,
    "RETRY_BASE_DELAY_SECONDS": 0.5,
    "RETRY_MAX_DELAY_SECONDS": 20.0,
    "CALL_DEADLINE_SECONDS": 300.0,
    "MODELS_CACHE_SECONDS": 600,
}


def switchboard_setting(name: str) -> float:
    value: float = settings.SWITCHBOARD.get(name, DEFAULTS[name])
    return value


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_delay: float
    max_delay: float
    deadline: float  # seconds for a whole call, retries and waits included

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        return cls(
            max_attempts=max(1, int(switchboard_setting("RETRY_MAX_ATTEMPTS"))),
            base_delay=float(switchboard_setting("RETRY_BASE_DELAY_SECONDS")),
            max_delay=float(switchboard_setting("RETRY_MAX_DELAY_SECONDS")),
            deadline=float(switchboard_setting("CALL_DEADLINE_SECONDS")),
        )

    def wait_after(
        self, attempt: int, error: ProviderError, *, produced_text: bool, remaining: float
    ) -> float | None:
        """Seconds to wait before another attempt after `attempt` failed, or None: stop."""
        if produced_text or not error.retryable or attempt >= self.max_attempts:
            return None
        if error.retry_after is not None:
            # The provider said when; sooner would only be refused again. Longer than
            # our cap means giving up now rather than holding the user.
            wait = error.retry_after
            if wait > self.max_delay:
                return None
        else:
            # Exponential backoff with "equal jitter": between half and all of the step.
            step = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
            wait = random.uniform(step / 2, step)
        return wait if wait < remaining else None
