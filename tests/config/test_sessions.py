"""Sessions are read from the cache and kept in the database (cached_db)."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.core.cache import cache

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, django_user_model):
    django_user_model.objects.create_user("ada", password="pw-ada-12345")
    assert client.post("/accounts/login/", {"username": "ada", "password": "pw-ada-12345"})
    return client


def test_a_session_survives_losing_the_cache(signed_in):
    # A restart empties the embedded deployment's in-process cache: nobody is signed out.
    cache.clear()
    assert signed_in.get("/").status_code == 200
    assert Session.objects.count() == 1


def test_signing_out_ends_the_session_everywhere(signed_in):
    signed_in.post("/accounts/logout/")
    assert Session.objects.count() == 0
    response = signed_in.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
