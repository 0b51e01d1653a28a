"""Hooks for other apps (usage metering) without generation importing them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent once an assistant message reaches complete / failed / cancelled, from the worker.
# Arguments: message (Message, final fields set), result (GenerationResult | None; None
# when the stream was stopped before the engine produced a result).
generation_finished = Signal()
