"""Exit 0 when the scale-out services (PostgreSQL and Redis) answer, 1 otherwise.

Used by `make test` to decide whether to run the suite a second time on them.
"""

from __future__ import annotations

import sys
from urllib.parse import urlparse

import psycopg
import redis


def reachable(database_url: str, redis_url: str) -> list[str]:
    problems = []
    url = urlparse(database_url)
    try:
        psycopg.connect(
            host=url.hostname,
            port=url.port or 5432,
            user=url.username,
            dbname=url.path.lstrip("/"),
            connect_timeout=2,
        ).close()
    except psycopg.Error as exc:
        problems.append(f"PostgreSQL at {url.hostname}:{url.port}: {exc}".strip())
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        problems.append(f"Redis at {redis_url}: {exc}")
    return problems


if __name__ == "__main__":
    problems = reachable(sys.argv[1], sys.argv[2])
    for problem in problems:
        print(f"skipping the PostgreSQL + Redis pass: {problem}")
    sys.exit(1 if problems else 0)
