"""The identity provider's endpoints: from the settings, or from its discovery document.

Discovery (`<issuer>/.well-known/openid-configuration`) is fetched when single sign-on
is first used in a process, not at start-up: a provider that is down then never stops
Switchboard from starting or serving (password sign-in and signed-in users carry on),
and the next SSO sign-in simply tries again. A document is kept for an hour, so a
provider that moves an endpoint is followed without a restart. An endpoint set in the
environment always wins, and with all four set discovery is never fetched.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import requests
from django.conf import settings

# Django setting -> the discovery document's key (OpenID Connect Discovery 1.0, 3).
ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
    "OIDC_OP_END_SESSION_ENDPOINT": "end_session_endpoint",
}
# Optional in the document: RP-initiated logout is only offered where the provider has it.
OPTIONAL = {"OIDC_OP_END_SESSION_ENDPOINT"}
KEEP_SECONDS = 3600.0

_lock = threading.Lock()
_documents: dict[str, tuple[float, dict[str, Any]]] = {}


class DiscoveryError(Exception):
    """The provider's discovery document could not be fetched or is not for our issuer."""


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def forget() -> None:
    """Drop every kept document (tests that start a provider on a new port)."""
    with _lock:
        _documents.clear()


def document(issuer: str) -> dict[str, Any]:
    with _lock:
        kept = _documents.get(issuer)
    if kept and time.monotonic() - kept[0] < KEEP_SECONDS:
        return kept[1]
    try:
        response = requests.get(discovery_url(issuer), timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        found = response.json()
    except (requests.RequestException, ValueError) as error:
        raise DiscoveryError(f"discovery at {discovery_url(issuer)} failed: {error}") from error
    # The document must name the issuer we were configured with (Discovery 1.0, 4.3):
    # otherwise tokens from another issuer would be checked against the wrong one.
    if not isinstance(found, dict) or found.get("issuer") != issuer:
        raise DiscoveryError(f"the discovery document at {discovery_url(issuer)} is not {issuer}'s")
    with _lock:
        _documents[issuer] = (time.monotonic(), found)
    return found


def endpoint(setting_name: str) -> str:
    """The URL of one endpoint; "" for an optional one the provider does not offer."""
    explicit = str(getattr(settings, setting_name, "") or "")
    if explicit:
        return explicit
    found = document(settings.OIDC_ISSUER).get(ENDPOINTS[setting_name], "")
    if not found and setting_name not in OPTIONAL:
        raise DiscoveryError(f"the provider's discovery document has no {ENDPOINTS[setting_name]}")
    return str(found)
