"""Search a user's own conversations: titles and message text, from the chat sidebar.

One interface, `search_conversations`, and one backend per database (chosen by
`connection.vendor`): SQLite's FTS5 in the embedded deployment (search_sqlite.py),
PostgreSQL's full-text search in scale-out (search_postgres.py). What differs between
them (the index, its query syntax, how it is kept) lives in those two classes, which
find the matches; the order of the results and the marked passages are made here.

The user's text never reaches the database as query syntax: it is cut into words
(letters and digits, as both indexes cut text), each word is matched as a literal,
and the last one as a prefix ("kube" finds "kubernetes"), so nothing typed can be a
syntax error. Every word must occur in the title, or in one message.

A hit's title and passage are lists of plain-text segments, each marked as a match or
not; the template escapes every segment as any text and puts the marked ones in
<mark>, so a message holding "<mark>" or "<script>" shows those characters.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from django.db import connection

from generation.models import Conversation, Message

if TYPE_CHECKING:
    from django.contrib.auth.models import User

DEFAULT_LIMIT = 20
MAX_WORDS = 16  # a pasted paragraph is a query of its first words, not of hundreds
PREFIX_MIN = 2
PASSAGE_CHARS = 160
# Letters and digits: what both indexes count as a word (FTS5's unicode61 tokenizer;
# the PostgreSQL index splits its text on punctuation first, see search_postgres.py).
WORD = re.compile(r"[^\W_]+")
ELLIPSIS = "…"


@dataclass(frozen=True)
class Segment:
    text: str
    marked: bool = False


Snippet = tuple[Segment, ...]


@dataclass(frozen=True)
class Terms:
    """The words searched for; the last matches as a prefix once it has two characters
    (every word starting with one letter matches nearly everything, slowly)."""

    words: tuple[str, ...]

    @classmethod
    def parse(cls, query: str) -> Terms:
        return cls(tuple(word.lower() for word in WORD.findall(query)[:MAX_WORDS]))

    def __bool__(self) -> bool:
        return bool(self.words)

    @property
    def whole(self) -> tuple[str, ...]:
        """The words matched as whole words."""
        return self.words if not self.prefix else self.words[:-1]

    @property
    def prefix(self) -> str:
        """The last word, matched as a prefix; "" when it is too short to be one."""
        return self.words[-1] if self.words and len(self.words[-1]) >= PREFIX_MIN else ""


@dataclass(frozen=True)
class SearchHit:
    conversation: Conversation
    title: Snippet  # the title, its matched words marked when the title matched
    snippet: Snippet  # from the latest matching message; empty when none was found


class SearchBackend(Protocol):
    """The two lookups one database answers; `search_conversations` combines them."""

    def title_matches(self, *, owner_id: int, terms: Terms, limit: int) -> list[tuple[int, str]]:
        """(conversation id, title) of the owner's conversations whose title holds every
        term, most recently active first."""
        ...

    def message_matches(self, *, owner_id: int, terms: Terms, limit: int) -> list[tuple[int, int]]:
        """(conversation id, message id) of the owner's conversations with a message
        holding every term, by their latest such message (whose id this is), newest
        first."""
        ...


def search_conversations(*, user: User, query: str, limit: int = DEFAULT_LIMIT) -> list[SearchHit]:
    """The user's conversations matching `query`: those whose title matches first (most
    recently active first), then those with a matching message (latest match first).
    A title match shows a passage when its messages are among the latest matches too;
    otherwise its title is the match shown (and mostly its first message's first line)."""
    terms = Terms.parse(query)
    if not terms or limit <= 0:
        return []
    search = backend()
    titled = dict(search.title_matches(owner_id=user.pk, terms=terms, limit=limit))
    # As many more as there are title matches: a title match among them gets its passage,
    # and `limit` others are still there to fill the list.
    more = limit + len(titled)
    latest = dict(search.message_matches(owner_id=user.pk, terms=terms, limit=more))
    order = list(dict.fromkeys([*titled, *latest]))[:limit]
    wanted = [latest[cid] for cid in order if cid in latest]
    texts = dict(Message.objects.filter(pk__in=wanted).values_list("pk", "content"))
    # The owner again: the backends filter by it, this keeps a slip there harmless.
    conversations = Conversation.objects.filter(owner=user).in_bulk(order)
    hits = []
    for cid in order:
        conversation = conversations.get(cid)
        if conversation is None:  # deleted between the queries
            continue
        title = mark_terms(titled[cid], terms) if cid in titled else None
        text = texts.get(latest[cid]) if cid in latest else None
        hits.append(
            SearchHit(
                conversation,
                title or (Segment(conversation.display_title),),
                mark_terms(text, terms, width=PASSAGE_CHARS) if text else (),
            )
        )
    return hits


def backend() -> SearchBackend:
    from generation.search_postgres import PostgresSearch
    from generation.search_sqlite import SqliteSearch

    backends: dict[str, type[SearchBackend]] = {
        "sqlite": SqliteSearch,
        "postgresql": PostgresSearch,
    }
    return backends[connection.vendor]()


def fold(text: str) -> str:
    """Lowercase, each accented letter as its base letter ("É" -> "e"), one character
    for one (positions in the folded text are positions in the text): SQLite's index
    matches "cafe" to "café", so marks must find it too."""
    return text.lower() if text.isascii() else "".join(_fold_char(ch) for ch in text)


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    lower = ch.lower()
    if len(lower) != 1:  # "İ" lowercases to two characters: kept as it is
        return ch
    decomposed = unicodedata.normalize("NFD", lower)
    base, marks = decomposed[0], decomposed[1:]
    return base if marks and all(unicodedata.combining(m) for m in marks) else lower


def term_pattern(terms: Terms) -> re.Pattern[str]:
    """Where the terms occur in folded text, as the indexes see words: each whole word,
    and any word starting with the prefix."""
    alternatives = [rf"{re.escape(fold(word))}(?![^\W_])" for word in terms.whole]
    if terms.prefix:
        alternatives.append(rf"{re.escape(fold(terms.prefix))}[^\W_]*")
    return re.compile(rf"(?<![^\W_])(?:{'|'.join(alternatives)})")


def mark_terms(text: str, terms: Terms, *, width: int = 0) -> Snippet:
    """`text` with the terms marked; with `width`, only a passage of about that many
    characters around the first match (cut at spaces, with ellipses)."""
    folded = fold(text)
    pattern = term_pattern(terms)
    start, end = 0, len(text)
    if width and len(text) > width:
        first = pattern.search(folded)
        at = first.start() if first else 0
        start = max(0, at - width // 4)
        if start:  # begin at a word
            space = text.find(" ", start, at)
            start = space + 1 if space != -1 else start
        end = min(len(text), start + width)
        if end < len(text):
            space = text.rfind(" ", at, end)
            end = space if space > at else end
    segments: list[Segment] = [Segment(ELLIPSIS)] if start else []
    position = start
    for match in pattern.finditer(folded, start, end):
        segments.append(Segment(text[position : match.start()]))
        segments.append(Segment(text[match.start() : match.end()], marked=True))
        position = match.end()
    segments.append(Segment(text[position:end] + (ELLIPSIS if end < len(text) else "")))
    return tuple(s for s in segments if s.text)
