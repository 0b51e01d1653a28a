"""/v1: an OpenAI-compatible gateway in front of every active provider.

Any OpenAI client (the official SDKs, editors, notebooks) points its ``base_url`` at
``<switchboard>/v1`` and authenticates with a personal API token. Requests are
translated into the engine's `GenerationRequest` (Anthropic included), budgeted and
metered like a chat call (source ``api``), and answered in OpenAI's wire format.
"""
