"""Conversation search on PostgreSQL (the scale-out deployment): full-text search over
two GIN expression indexes, created by migration 0009_search_postgres.

The indexed expression splits text on punctuation before PostgreSQL's parser sees it:
that parser keeps "os.path.join", "kubernetes.io", "a@b.com" or "/usr/bin" as single
tokens, where a user searching "join" or "bin" expects to find them (and where SQLite's
index, and the words we search for, split them). The 'simple' configuration lowercases
and neither stems nor drops stop words, as SQLite's index does.

Only finished messages are indexed (a partial index): the saves of a streaming answer,
several a second, leave the index alone, and the search asks for the same condition so
that the planner uses it. Passages are cut by generation/search.py, as for SQLite
(PostgreSQL's ts_headline would parse the unsplit text and miss those words).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections

from generation.search import Terms

# The characters PostgreSQL's parser joins tokens with (hosts, paths, emails, versions,
# hyphenated words, tags, entities); each becomes a space in the indexed text. The
# index expressions of migration 0009 must read exactly like these two.
JOINERS = ".-/@:<>&;_~+\\"
MESSAGE_VECTOR = "to_tsvector('simple'::regconfig, translate(m.content, {joiners}, {spaces}))"
TITLE_VECTOR = "to_tsvector('simple'::regconfig, translate(c.title, {joiners}, {spaces}))"
FINISHED = "m.status NOT IN ('pending', 'streaming')"
# The queries below format in only these constants; the user's words are bound
# parameters (hence the S608 waivers).


def ts_query(terms: Terms) -> str:
    """to_tsquery syntax for the terms: each quoted, all required, the prefix as a
    prefix. The words hold letters and digits only, so no quote can end one early."""
    words = [f"'{word}'" for word in terms.whole]
    if terms.prefix:
        words.append(f"'{terms.prefix}':*")
    return " & ".join(words)


def vector(template: str) -> str:
    # The translate() arguments as SQL literals, so that the expression is the index's.
    joiners = "'" + JOINERS.replace("'", "''") + "'"
    return template.format(joiners=joiners, spaces="'" + " " * len(JOINERS) + "'")


class PostgresSearch:
    def __init__(self, alias: str = "default") -> None:
        self.alias = alias

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[int, Any]]:
        with connections[self.alias].cursor() as cursor:
            cursor.execute(sql, params)
            return [(first, second) for first, second in cursor.fetchall()]

    def title_matches(self, *, owner_id: int, terms: Terms, limit: int) -> list[tuple[int, str]]:
        return self._rows(
            f"""
            SELECT c.id, c.title FROM generation_conversation AS c
            WHERE c.owner_id = %s AND {vector(TITLE_VECTOR)} @@ to_tsquery('simple', %s)
            ORDER BY c.updated_at DESC, c.id DESC
            LIMIT %s
            """,  # noqa: S608
            [owner_id, ts_query(terms), limit],
        )

    def message_matches(self, *, owner_id: int, terms: Terms, limit: int) -> list[tuple[int, int]]:
        return self._rows(
            f"""
            SELECT m.conversation_id, max(m.id) AS latest
            FROM generation_message AS m
            JOIN generation_conversation AS c ON c.id = m.conversation_id
            WHERE c.owner_id = %s AND {FINISHED}
                AND {vector(MESSAGE_VECTOR)} @@ to_tsquery('simple', %s)
            GROUP BY m.conversation_id
            ORDER BY latest DESC
            LIMIT %s
            """,  # noqa: S608
            [owner_id, ts_query(terms), limit],
        )
