from __future__ import annotations

from generation import tokens_admin  # noqa: F401  (registers ApiTokenAdmin)
