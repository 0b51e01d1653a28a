"""Conversation search on SQLite (the embedded deployment): two FTS5 tables kept in step
with the chat tables by triggers, created by migration 0008_search_sqlite.

- generation_message_fts: one row per finished message (rowid = the message's id), its
  text and, unindexed, its conversation's id. An answer is indexed once it stops
  streaming: the saves of a streaming answer (several a second) touch no index, and the
  final save indexes the final text. A later change of a finished message's text
  replaces its row; a deleted message takes its row with it.
- generation_conversation_fts: one row per conversation (rowid = its id), its title.

Both keep their own copy of the text (a regular FTS5 table, not an external-content
one): deleting a row is then always safe, whatever was indexed, and snippet() reads it.

A SQLite migration that rebuilds one of the chat tables (as Django's schema editor does
for most column changes) drops that table's triggers with it; `repair_index` (run after
every migrate) puts them back and rebuilds the index if any was missing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from generation.search import (
    ELLIPSIS,
    MARK_END,
    MARK_START,
    Snippet,
    Terms,
    segments_from_marked,
)

logger = logging.getLogger(__name__)

SNIPPET_TOKENS = 16
# Statuses whose text is still being written: not indexed yet.
UNFINISHED = "('pending', 'streaming')"
# The text as indexed: without the two private-use characters snippets mark matches
# with, so that every one in a snippet is the index's own.
PLAIN = "replace(replace({}, char(57344), ''), char(57345), '')"

# Composed from the constants above only; nothing a user typed is formatted into SQL
# anywhere in this module (their words are bound parameters), hence the S608 waivers.
NEW_MESSAGE = f"new.id, {PLAIN.format('new.content')}, new.conversation_id"
NEW_TITLE = f"new.id, {PLAIN.format('new.title')}"
TRIGGERS = {
    "generation_message_fts_insert": f"""
CREATE TRIGGER generation_message_fts_insert AFTER INSERT ON generation_message
WHEN new.status NOT IN {UNFINISHED}
BEGIN
    INSERT INTO generation_message_fts (rowid, content, conversation_id)
    VALUES ({NEW_MESSAGE});
END""",  # noqa: S608
    # Only a change of text or status, and only to or from a finished state: the
    # streaming saves of an answer do nothing here.
    "generation_message_fts_update": f"""
CREATE TRIGGER generation_message_fts_update AFTER UPDATE OF content, status
ON generation_message
WHEN (old.content IS NOT new.content OR old.status IS NOT new.status)
    AND (old.status NOT IN {UNFINISHED} OR new.status NOT IN {UNFINISHED})
BEGIN
    DELETE FROM generation_message_fts WHERE rowid = old.id;
    INSERT INTO generation_message_fts (rowid, content, conversation_id)
    SELECT {NEW_MESSAGE} WHERE new.status NOT IN {UNFINISHED};
END""",  # noqa: S608
    "generation_message_fts_delete": """
CREATE TRIGGER generation_message_fts_delete AFTER DELETE ON generation_message
BEGIN
    DELETE FROM generation_message_fts WHERE rowid = old.id;
END""",
    "generation_conversation_fts_insert": f"""
CREATE TRIGGER generation_conversation_fts_insert AFTER INSERT ON generation_conversation
BEGIN
    INSERT INTO generation_conversation_fts (rowid, title) VALUES ({NEW_TITLE});
END""",  # noqa: S608
    # Every message sent saves its conversation (updated_at): only a new title counts.
    "generation_conversation_fts_update": f"""
CREATE TRIGGER generation_conversation_fts_update AFTER UPDATE OF title
ON generation_conversation
WHEN old.title IS NOT new.title
BEGIN
    DELETE FROM generation_conversation_fts WHERE rowid = old.id;
    INSERT INTO generation_conversation_fts (rowid, title) VALUES ({NEW_TITLE});
END""",  # noqa: S608
    "generation_conversation_fts_delete": """
CREATE TRIGGER generation_conversation_fts_delete AFTER DELETE ON generation_conversation
BEGIN
    DELETE FROM generation_conversation_fts WHERE rowid = old.id;
END""",
}
FILL = [
    "DELETE FROM generation_message_fts",
    "DELETE FROM generation_conversation_fts",
    f"""INSERT INTO generation_message_fts (rowid, content, conversation_id)
    SELECT id, {PLAIN.format("content")}, conversation_id FROM generation_message
    WHERE status NOT IN {UNFINISHED}""",  # noqa: S608
    f"""INSERT INTO generation_conversation_fts (rowid, title)
    SELECT id, {PLAIN.format("title")} FROM generation_conversation""",  # noqa: S608
]


def fts_query(terms: Terms) -> str:
    """FTS5 syntax for the terms: each a quoted string (so "AND", "NEAR" or "*" are
    words, never operators), the last a prefix. The words hold letters and digits only."""
    *whole, last = terms.words
    return " ".join([*(f'"{word}"' for word in whole), f'"{last}"*'])


class SqliteSearch:
    def __init__(self, alias: str = "default") -> None:
        self.alias = alias

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with connections[self.alias].cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def title_matches(
        self, *, owner_id: int, terms: Terms, limit: int
    ) -> list[tuple[int, Snippet]]:
        # CROSS JOIN keeps the index outermost: the owner's conversations are many, the
        # matching titles few.
        rows = self._rows(
            """
            SELECT c.id, highlight(generation_conversation_fts, 0, %s, %s)
            FROM generation_conversation_fts(%s) CROSS JOIN generation_conversation AS c
            WHERE c.id = generation_conversation_fts.rowid AND c.owner_id = %s
            ORDER BY c.updated_at DESC, c.id DESC
            LIMIT %s
            """,
            [MARK_START, MARK_END, fts_query(terms), owner_id, limit],
        )
        return [(cid, segments_from_marked(title)) for cid, title in rows]

    def message_matches(self, *, owner_id: int, terms: Terms, limit: int) -> list[tuple[int, int]]:
        # Newest match first, straight from the index (FTS5 walks rowids backwards), and
        # read only until `limit` conversations are found: a common word does not make
        # every match of the user's history count.
        found: dict[int, int] = {}
        with connections[self.alias].cursor() as cursor:
            cursor.execute(
                """
                SELECT f.conversation_id, f.rowid
                FROM generation_message_fts(%s) AS f CROSS JOIN generation_conversation AS c
                WHERE c.id = f.conversation_id AND c.owner_id = %s
                ORDER BY f.rowid DESC
                """,
                [fts_query(terms), owner_id],
            )
            for conversation_id, message_id in cursor:
                found.setdefault(conversation_id, message_id)
                if len(found) >= limit:
                    break
        return list(found.items())

    def latest_matches(self, *, terms: Terms, conversation_ids: Sequence[int]) -> dict[int, int]:
        # From each conversation's messages, each looked up in the index by its rowid.
        marks = ", ".join(["%s"] * len(conversation_ids))
        rows = self._rows(
            f"""
            SELECT m.conversation_id, max(m.id) FROM generation_message AS m
            WHERE m.conversation_id IN ({marks}) AND EXISTS (
                SELECT 1 FROM generation_message_fts(%s) AS f WHERE f.rowid = m.id
            )
            GROUP BY m.conversation_id
            """,  # noqa: S608
            [*conversation_ids, fts_query(terms)],
        )
        return dict(rows)

    def snippets(self, *, terms: Terms, message_ids: Sequence[int]) -> dict[int, Snippet]:
        marks = ", ".join(["%s"] * len(message_ids))
        rows = self._rows(
            f"""
            SELECT rowid, snippet(generation_message_fts, 0, %s, %s, %s, {SNIPPET_TOKENS})
            FROM generation_message_fts(%s) WHERE rowid IN ({marks})
            """,  # noqa: S608
            [MARK_START, MARK_END, ELLIPSIS, fts_query(terms), *message_ids],
        )
        return {mid: segments_from_marked(text) for mid, text in rows}


def missing_triggers(connection: BaseDatabaseWrapper) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        present = {name for (name,) in cursor.fetchall()}
    return [name for name in TRIGGERS if name not in present]


def repair_index(*, using: str = "default", **kwargs: object) -> None:
    """Put back any trigger a table rebuild dropped, and rebuild the index then (writes
    made without the trigger are not in it). Connected to post_migrate."""
    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    if "generation_message_fts" not in connection.introspection.table_names():
        return  # migrated back before the index existed
    missing = missing_triggers(connection)
    if not missing:
        return
    logger.warning("Search index triggers were missing (%s): rebuilding the index", missing)
    with transaction.atomic(using=using), connection.cursor() as cursor:
        for name in missing:
            cursor.execute(TRIGGERS[name])
        for statement in FILL:
            cursor.execute(statement)
