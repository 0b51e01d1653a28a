"""The HTTP clients under the SDKs: built cheaply, and safe about where a key goes."""

from __future__ import annotations

import ssl

from providers.adapters.clients import http_client


def _tls(client) -> ssl.SSLContext:
    return client._transport._pool._ssl_context


def test_every_client_shares_one_verifying_tls_context():
    # Building a context loads the CA bundle (50-100 ms): a worker thread's first answer
    # and every admin "Test connection" used to pay it.
    first, second = http_client(), http_client()
    assert _tls(first) is _tls(second)
    assert _tls(first).verify_mode == ssl.CERT_REQUIRED
    assert _tls(first).check_hostname


def test_redirects_are_not_followed():
    # A redirect to another host would carry the provider's key there.
    assert http_client().follow_redirects is False
