"""SQLite write transactions wait in line in the process, and never lose work."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _sqlite_only():
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite backend only (PostgreSQL runs writers side by side)")


def test_concurrent_write_transactions_all_commit_one_after_another():
    inside = 0
    overlapped = False
    errors: list[BaseException] = []
    guard = threading.Lock()

    def write(n: int) -> None:
        nonlocal inside, overlapped
        try:
            with transaction.atomic():
                with guard:
                    inside += 1
                    overlapped = overlapped or inside > 1
                get_user_model().objects.create(username=f"writer-{n}")
                with guard:
                    inside -= 1
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert not overlapped  # one write transaction at a time, none refused as "locked"
    assert get_user_model().objects.filter(username__startswith="writer-").count() == 20


def _fail_inside_a_transaction() -> None:
    with transaction.atomic():
        get_user_model().objects.create(username="rolled-back")
        raise RuntimeError("boom")


def test_a_failed_transaction_lets_the_next_writer_in():
    with pytest.raises(RuntimeError):
        _fail_inside_a_transaction()
    done = threading.Event()

    def write() -> None:
        with transaction.atomic():
            get_user_model().objects.create(username="next")
        connections.close_all()
        done.set()

    threading.Thread(target=write).start()
    assert done.wait(timeout=10)
    assert list(get_user_model().objects.values_list("username", flat=True)) == ["next"]
