"""The HTTP clients under the SDKs: built cheaply, and safe about where a key goes."""

from __future__ import annotations

import ssl

from providers.adapters.clients import _tls_context, http_client


def test_clients_verify_tls_with_one_context_loaded_once():
    # Building a context loads the CA bundle (50-100 ms): a worker thread's first answer
    # and every admin "Test connection" used to pay it. http_client() passes this one.
    assert _tls_context() is _tls_context()
    assert _tls_context().verify_mode == ssl.CERT_REQUIRED
    assert _tls_context().check_hostname


def test_redirects_are_not_followed():
    # A redirect to another host would carry the provider's key there.
    assert http_client().follow_redirects is False
