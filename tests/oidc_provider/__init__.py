"""A small OpenID Connect provider for the single sign-on tests (see settings.py)."""

from __future__ import annotations

# A custom claim name, as many providers use one of their own: Switchboard reads it
# through OIDC_GROUPS_CLAIM.
GROUPS_CLAIM = "teams"
