from __future__ import annotations

from generation import (
    api_tokens_admin,  # noqa: F401  (registers ApiTokenAdmin)
    presets_admin,  # noqa: F401  (registers SharedPresetAdmin)
)
