"""Files attached to a user's chat message: images, and text-like files with their text.

The bytes live in the database (AttachmentBlob, a table of their own), so every web and
worker process of a scale-out deployment reads them without a shared volume, and a
query listing messages or attachments never loads them. An attachment belongs to its
message (and so to the message's conversation and owner) and goes with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Prefetch, prefetch_related_objects

from providers.adapters.base import FilePart, ImagePart, Part

if TYPE_CHECKING:
    from generation.models import Message
    from generation.uploads import Upload

NAME_MAX = 200
# Thumbnails: small enough that a thread of many images loads at once; stored at upload.
THUMBNAIL_SIZE = 320
THUMBNAIL_MEDIA_TYPE = "image/webp"


class Attachment(models.Model):
    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        FILE = "file", "File"  # a text file, or a PDF: its text is what the model reads

    message = models.ForeignKey(
        "generation.Message", on_delete=models.CASCADE, related_name="attachments"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The uploaded file's name made safe to show and to put in a header (uploads.safe_name).
    name = models.CharField(max_length=NAME_MAX)
    # Found from the bytes at upload (uploads.py), never the type the browser claimed.
    media_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()  # bytes
    # A file's text (a PDF's, extracted), as the model reads it; empty for an image.
    text = models.TextField(blank=True)
    thumb_width = models.PositiveSmallIntegerField(null=True, blank=True)
    thumb_height = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]  # the order they were attached in

    def __str__(self) -> str:
        return self.name

    @property
    def is_image(self) -> bool:
        return self.kind == self.Kind.IMAGE

    def part(self) -> Part:
        """The message part the provider reads; an image needs its blob (see load_parts)."""
        data = bytes(self.blob.data) if self.is_image else b""
        return attachment_part(self.kind, self.name, self.media_type, data, self.text)


class AttachmentBlob(models.Model):
    """The bytes of one attachment and of its thumbnail (an image's), apart from the row
    that describes them."""

    attachment = models.OneToOneField(
        Attachment, on_delete=models.CASCADE, primary_key=True, related_name="blob"
    )
    data = models.BinaryField()
    thumbnail = models.BinaryField(blank=True, default=b"")

    def __str__(self) -> str:
        return f"bytes of attachment {self.attachment_id}"


def attachment_part(kind: str, name: str, media_type: str, data: bytes, text: str) -> Part:
    """One shape for a stored attachment and a fresh upload: an image goes as its bytes,
    any other file as its text under its name."""
    if kind == Attachment.Kind.IMAGE:
        return ImagePart(media_type, data, name)
    return FilePart(name, text)


def load_parts(messages: Sequence[Message]) -> None:
    """Everything the parts of `messages` need, in two queries whatever their number: the
    attachments, and the bytes of the images among them (a file goes as its text, so its
    bytes stay in the database). Given a branch, not a whole chat: the other versions'
    images are never read."""
    image_bytes = AttachmentBlob.objects.filter(attachment__kind=Attachment.Kind.IMAGE).only("data")
    prefetch_related_objects(
        messages, "attachments", Prefetch("attachments__blob", queryset=image_bytes)
    )


def for_thread() -> Prefetch[str]:
    """What the thread shows of each message's attachments: no bytes, no text."""
    return Prefetch("attachments", queryset=Attachment.objects.defer("text"))


def store_attachments(*, message: Message, uploads: Sequence[Upload]) -> list[Attachment]:
    """Two INSERTs whatever the number: the rows, then their bytes. Call in the
    transaction that stores the message, so nothing is left half-saved."""
    rows = Attachment.objects.bulk_create(
        [
            Attachment(
                message=message,
                kind=upload.kind,
                name=upload.name,
                media_type=upload.media_type,
                size=len(upload.data),
                text=upload.text,
                thumb_width=upload.thumbnail.width if upload.thumbnail else None,
                thumb_height=upload.thumbnail.height if upload.thumbnail else None,
            )
            for upload in uploads
        ]
    )
    AttachmentBlob.objects.bulk_create(
        [
            AttachmentBlob(
                attachment=row,
                data=upload.data,
                thumbnail=upload.thumbnail.data if upload.thumbnail else b"",
            )
            for row, upload in zip(rows, uploads, strict=True)
        ]
    )
    return rows


def carried_by(message: Message) -> list[Attachment]:
    """A message's attachments with their bytes, for a new version of it to carry."""
    return list(Attachment.objects.filter(message=message).select_related("blob"))


def copy_attachments(*, attachments: Sequence[Attachment], to: Message) -> None:
    """The same files on another message (an edited question keeps what it asked about).
    Copies, not shared rows: each message's attachments go with it when it is deleted."""
    rows = Attachment.objects.bulk_create(
        [
            Attachment(
                message=to,
                kind=old.kind,
                name=old.name,
                media_type=old.media_type,
                size=old.size,
                text=old.text,
                thumb_width=old.thumb_width,
                thumb_height=old.thumb_height,
            )
            for old in attachments
        ]
    )
    AttachmentBlob.objects.bulk_create(
        [
            AttachmentBlob(attachment=row, data=old.blob.data, thumbnail=old.blob.thumbnail)
            for row, old in zip(rows, attachments, strict=True)
        ]
    )
