"""A thread that waits on the network gives its pooled connection back, not a kept one."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction

from config.db import arelease_connection, release_connection

pytestmark = pytest.mark.django_db(transaction=True)


def _pooled() -> bool:
    return "pool" in connection.settings_dict.get("OPTIONS", {})


def _in_use() -> int:
    from django.db.backends.postgresql.base import DatabaseWrapper

    wrapper = connections["default"]  # the real wrapper: `connection` is a proxy
    assert isinstance(wrapper, DatabaseWrapper)
    stats = wrapper.pool.get_stats()
    return stats["pool_size"] - stats["pool_available"]


def test_a_kept_connection_stays_open_for_the_next_query():
    if not connection.settings_dict.get("CONN_MAX_AGE"):
        pytest.skip("kept connections: the SQLite default")
    get_user_model().objects.count()
    kept = connection.connection

    release_connection()

    assert connection.connection is kept
    assert get_user_model().objects.count() == 0


@pytest.mark.parametrize("release", [release_connection, async_to_sync(arelease_connection)])
def test_a_pooled_connection_goes_back_to_the_pool_and_comes_again(release):
    if not _pooled():
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
