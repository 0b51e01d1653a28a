"""A thread that waits on the network gives its pooled connection back, not a kept one."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction

from config.db import arelease_connection, pooled, release_connection, return_pooled_connection

pytestmark = pytest.mark.django_db(transaction=True)


def _in_use() -> int:
    from django.db.backends.postgresql.base import DatabaseWrapper

    wrapper = connections["default"]  # the real wrapper: `connection` is a proxy
    assert isinstance(wrapper, DatabaseWrapper)
    stats = wrapper.pool.get_stats()
    return stats["pool_size"] - stats["pool_available"]


def test_a_worker_keeps_its_own_sqlite_connection_between_saves():
    # return_pooled_connection gives only a pooled connection back: a worker thread's
    # SQLite connection serves its every save (reopening costs a millisecond each).
    if pooled():
        pytest.skip("SQLite (PostgreSQL's pooled connection goes back: test below)")
    get_user_model().objects.count()
    kept = connection.connection

    return_pooled_connection()

    assert connection.connection is kept


def test_a_released_sqlite_connection_is_closed_and_reopened():
    # An SSE stream's thread keeps no SQLite connection (an open file) while it waits.
    if pooled():
        pytest.skip("SQLite")
    get_user_model().objects.count()

    release_connection()

    assert connection.connection is None
    assert get_user_model().objects.count() == 0, "the next query opens one again"


@pytest.mark.parametrize("release", [release_connection, async_to_sync(arelease_connection)])
def test_a_pooled_connection_goes_back_to_the_pool_and_comes_again(release):
    if not pooled():
        pytest.skip("PostgreSQL's connection pool")
    get_user_model().objects.count()
    holding = _in_use()

    release()

    assert connection.connection is None
    assert _in_use() == holding - 1
    assert get_user_model().objects.count() == 0, "the next query takes one again"


def test_nothing_is_released_inside_a_transaction():
    get_user_model().objects.count()
    with transaction.atomic():
        get_user_model().objects.create_user("inside")
        open_connection = connection.connection
        release_connection()
        assert connection.connection is open_connection
    assert get_user_model().objects.filter(username="inside").exists()
