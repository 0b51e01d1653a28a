"""Existing chats become one branch each: every message follows the one created before it
in its conversation, and the conversation shows the branch ending at its last message.
A linear chat therefore reads exactly as it did."""

from __future__ import annotations

from typing import Any

from django.db import migrations

BATCH = 1000


def link_messages_in_order(apps: Any, schema_editor: Any) -> None:
    """Link the messages of every conversation that has no active branch yet (all of them
    when the migration runs; a chat made since is left as it is)."""
    Message = apps.get_model("generation", "Message")
    Conversation = apps.get_model("generation", "Conversation")
    rows = (
        Message.objects.filter(conversation__current_leaf__isnull=True)
        .order_by("conversation_id", "created_at", "id")
        .values_list("id", "conversation_id")
    )
    linked: list[Any] = []
    leaves: list[Any] = []
    previous_id, previous_conversation = None, None
    for message_id, conversation_id in rows.iterator(chunk_size=BATCH):
        if conversation_id != previous_conversation:
            if previous_conversation is not None:
                leaves.append(Conversation(pk=previous_conversation, current_leaf_id=previous_id))
            previous_id, previous_conversation = None, conversation_id
        linked.append(Message(pk=message_id, parent_id=previous_id))
        previous_id = message_id
        if len(linked) >= BATCH:
            Message.objects.bulk_update(linked, ["parent"])
            linked.clear()
    if previous_conversation is not None:
        leaves.append(Conversation(pk=previous_conversation, current_leaf_id=previous_id))
    Message.objects.bulk_update(linked, ["parent"], batch_size=BATCH)
    # bulk_update leaves updated_at alone: the chats keep their place in the list.
    Conversation.objects.bulk_update(leaves, ["current_leaf"], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [
        ("generation", "0008_message_tree"),
    ]

    operations = [
        migrations.RunPython(link_messages_in_order, migrations.RunPython.noop, elidable=False),
    ]
