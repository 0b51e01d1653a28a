"""A conversation's messages form a tree; the chat shows one branch of it.

Each message has a parent (the message it follows; none for a first message). Editing a
user message adds a user message beside it (same parent), regenerating an answer adds
an answer beside it: the messages that share a parent are the *versions* of that place
in the chat, in the order they were made. The conversation's `current_leaf` ends the
*active branch*, the path from the first message down to it: that is what the chat
shows, what an export holds, and what a new answer is asked with.

The functions on lists take a conversation's messages in created order (the model's
ordering), as one query loads them: the tree is walked in Python, so a branch, its
versions and a leaf cost no query of their own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from generation.models import Conversation, Message


@dataclass(frozen=True)
class Versions:
    """Where a message stands among its versions: `position` of `count`, from 1, with the
    ids of the versions before and after it (None at either end)."""

    position: int
    count: int
    previous_id: int | None
    next_id: int | None


def path_to(messages: Sequence[Message], leaf_id: int | None) -> list[Message]:
    """The branch ending at `leaf_id`, first message first (empty for None)."""
    by_id = {message.pk: message for message in messages}
    path: list[Message] = []
    node = by_id.get(leaf_id) if leaf_id is not None else None
    while node is not None and len(path) <= len(by_id):  # the bound stops a cycle
        path.append(node)
        node = by_id.get(node.parent_id) if node.parent_id is not None else None
    path.reverse()
    return path


def active_leaf_id(conversation: Conversation, messages: Sequence[Message]) -> int | None:
    # A chat always has its leaf once it has messages; the last message stands in for one
    # made by hand without it.
    if conversation.current_leaf_id is not None:
        return conversation.current_leaf_id
    return messages[-1].pk if messages else None


def active_branch(conversation: Conversation, messages: Sequence[Message]) -> list[Message]:
    return path_to(messages, active_leaf_id(conversation, messages))


def _versions_among(ids: list[int], message_id: int) -> Versions | None:
    if len(ids) < 2:
        return None
    index = ids.index(message_id)
    return Versions(
        position=index + 1,
        count=len(ids),
        previous_id=ids[index - 1] if index > 0 else None,
        next_id=ids[index + 1] if index + 1 < len(ids) else None,
    )


def versions_on(branch: Sequence[Message], messages: Sequence[Message]) -> dict[int, Versions]:
    """The versions of each message of `branch` that has any, by message id."""
    siblings: dict[int | None, list[int]] = defaultdict(list)
    for message in messages:
        siblings[message.parent_id].append(message.pk)
    found = {}
    for message in branch:
        versions = _versions_among(siblings[message.parent_id], message.pk)
        if versions is not None:
            found[message.pk] = versions
    return found


def newest_leaf_under(messages: Sequence[Message], message_id: int) -> int:
    """The most recently made message at the end of a branch through `message_id`: where
    the user last was in that version."""
    children: dict[int | None, list[int]] = defaultdict(list)
    made = {}
    for index, message in enumerate(messages):
        children[message.parent_id].append(message.pk)
        made[message.pk] = index
    leaves, stack = [], [message_id]
    while stack:
        node = stack.pop()
        if node in children:
            stack.extend(children[node])
        else:
            leaves.append(node)
    return max(leaves, key=lambda pk: made.get(pk, -1))


def show_version(*, message: Message) -> None:
    """Make the chat show the branch through `message` (one of a place's versions): the
    newest branch below it becomes the active one. Nothing is asked of any provider, and
    the chat keeps its place in the list (update() leaves updated_at alone)."""
    tree = list(Message.objects.filter(conversation_id=message.conversation_id).only("parent"))
    leaf_id = newest_leaf_under(tree, message.pk)
    Conversation.objects.filter(pk=message.conversation_id).update(current_leaf_id=leaf_id)
