"""Conversation search on SQLite (the embedded deployment): two FTS5 tables kept in step
with the chat tables by triggers, created by migration 0008_search_sqlite.

- generation_message_fts: one row per finished message (rowid = the message's id): its
  text, its owner (the conversation's) and, unindexed, its conversation's id. An answer
  is indexed once it stops streaming: the saves of a streaming answer (several a second)
  touch no index, and its final save indexes the final text. A later change of a
  finished message's text replaces its row; a deleted message takes its row with it.
- generation_conversation_fts: one row per conversation (rowid = its id): its title and
  owner.

The owner is a column of the index so that one index lookup finds the user's matches
only: a word other users wrote a thousand times costs this user nothing. Both tables
keep their own copy of the text (regular FTS5 tables, not external-content ones):
deleting a row is then always safe, whatever was indexed.
Prefix indexes of two and three characters keep "ku"* or "the"* as cheap as a word.

A SQLite migration that rebuilds one of the chat tables (as Django's schema editor does
for most column changes) drops that table's triggers with it; `repair_index` (run after
every migrate) puts them back and rebuilds the index if any was missing.
"""

from __future__ import annotations

import logging

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from generation.search import Terms

logger = logging.getLogger(__name__)

# Statuses whose text is still being written: not indexed yet.
UNFINISHED = "('pending', 'streaming')"

# Composed from the constants above only; nothing a user typed is formatted into SQL
# anywhere in this module (their words are bound parameters), hence the S608 waivers.
OWNER_OF_NEW = "(SELECT owner_id FROM generation_conversation WHERE id = new.conversation_id)"
NEW_MESSAGE = f"new.id, new.content, {OWNER_OF_NEW}, new.conversation_id"
NEW_TITLE = "new.id, new.title, new.owner_id"
MESSAGE_COLUMNS = "(rowid, content, owner, conversation_id)"
TRIGGERS = {
    "generation_message_fts_insert": f"""
CREATE TRIGGER generation_message_fts_insert AFTER INSERT ON generation_message
WHEN new.status NOT IN {UNFINISHED}
BEGIN
    INSERT INTO generation_message_fts {MESSAGE_COLUMNS} VALUES ({NEW_MESSAGE});
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
    INSERT INTO generation_message_fts {MESSAGE_COLUMNS}
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
    INSERT INTO generation_conversation_fts (rowid, title, owner) VALUES ({NEW_TITLE});
END""",  # noqa: S608
    # Every message sent saves its conversation (updated_at): only a new title or owner
    # counts. (The app never moves a conversation to another owner; should anything
    # do it, its messages follow it in the index.)
    "generation_conversation_fts_update": f"""
CREATE TRIGGER generation_conversation_fts_update AFTER UPDATE OF title, owner_id
ON generation_conversation
WHEN old.title IS NOT new.title OR old.owner_id IS NOT new.owner_id
BEGIN
    DELETE FROM generation_conversation_fts WHERE rowid = old.id;
    INSERT INTO generation_conversation_fts (rowid, title, owner) VALUES ({NEW_TITLE});
END""",  # noqa: S608
    "generation_conversation_fts_owner": f"""
CREATE TRIGGER generation_conversation_fts_owner AFTER UPDATE OF owner_id
ON generation_conversation
WHEN old.owner_id IS NOT new.owner_id
BEGIN
    DELETE FROM generation_message_fts
    WHERE rowid IN (SELECT id FROM generation_message WHERE conversation_id = new.id);
    INSERT INTO generation_message_fts {MESSAGE_COLUMNS}
    SELECT id, content, new.owner_id, conversation_id
    FROM generation_message WHERE conversation_id = new.id AND status NOT IN {UNFINISHED};
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
    f"""INSERT INTO generation_message_fts {MESSAGE_COLUMNS}
    SELECT m.id, m.content, c.owner_id, m.conversation_id
    FROM generation_message AS m JOIN generation_conversation AS c ON c.id = m.conversation_id
    WHERE m.status NOT IN {UNFINISHED}""",  # noqa: S608
    """INSERT INTO generation_conversation_fts (rowid, title, owner)
    SELECT id, title, owner_id FROM generation_conversation""",
]


def fts_query(column: str, owner_id: int, terms: Terms) -> str:
    """FTS5 syntax: the owner's rows whose `column` holds the terms, each a quoted string
    (so "AND", "NEAR" or "*" are words, never operators), the prefix as a prefix. The
    words hold letters and digits only, and the owner is a number."""
    words = [f'"{word}"' for word in terms.whole]
    if terms.prefix:
        words.append(f'"{terms.prefix}"*')
    return f'owner : "{int(owner_id)}" AND {column} : ({" ".join(words)})'


class SqliteSearch:
    def __init__(self, alias: str = "default") -> None:
        self.alias = alias

    def title_matches(self, *, owner_id: int, terms: Terms, limit: int) -> list[tuple[int, str]]:
        # CROSS JOIN keeps the index outermost: the owner's conversations are many, the
        # matching titles fewer.
        with connections[self.alias].cursor() as cursor:
            cursor.execute(
                """
                SELECT c.id, c.title
                FROM generation_conversation_fts(%s) AS t CROSS JOIN generation_conversation AS c
                WHERE c.id = t.rowid
                ORDER BY c.updated_at DESC, c.id DESC
                LIMIT %s
                """,
                [fts_query("title", owner_id, terms), limit],
            )
            return [(cid, title) for cid, title in cursor.fetchall()]

    def message_matches(self, *, owner_id: int, terms: Terms, limit: int) -> list[tuple[int, int]]:
        # Newest match first, straight from the index (FTS5 walks rowids backwards), read
        # only until `limit` conversations are found: a common word does not make every
        # match of the user's history count. One evaluation of the query: each one sets
        # the prefix's terms up again (a query per message had cost seconds), and FTS5's
        # snippet() would tokenize every message read, most of them older matches of a
        # conversation already found.
        found: dict[int, int] = {}
        with connections[self.alias].cursor() as cursor:
            cursor.execute(
                "SELECT conversation_id, rowid FROM generation_message_fts(%s) ORDER BY rowid DESC",
                [fts_query("content", owner_id, terms)],
            )
            for conversation_id, message_id in cursor:
                found.setdefault(conversation_id, message_id)
                if len(found) >= limit:
                    break
        return list(found.items())


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
