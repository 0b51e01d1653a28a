"""Serving attachments (and image thumbnails) to their owner.

What an upload holds must never run as a page of ours: the content type comes from the
kind we found in its bytes (never the browser's claim), only our raster images are
shown inline, everything else downloads, and every response forbids sniffing and runs
in a sandbox with no sources allowed, so even a file that a browser took for HTML or
SVG could load nothing and run nothing.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from generation.attachments import THUMBNAIL_MEDIA_TYPE, Attachment, AttachmentBlob
from generation.uploads import IMAGE_SIGNATURES

if TYPE_CHECKING:
    from config.request_types import AuthenticatedHttpRequest

INLINE_TYPES = frozenset({media_type for _, _, media_type in IMAGE_SIGNATURES} | {"image/webp"})
SANDBOX = "default-src 'none'; sandbox"
# An attachment never changes: the owner's browser may keep it (never a shared cache).
CACHE = "private, max-age=86400"


def _get_attachment_for_user(request: AuthenticatedHttpRequest, attachment_id: int) -> Attachment:
    return get_object_or_404(
        Attachment.objects.defer("text"),
        pk=attachment_id,
        message__conversation__owner=request.user,
    )


def _served_type(attachment: Attachment) -> str:
    if attachment.is_image and attachment.media_type in INLINE_TYPES:
        return attachment.media_type
    if attachment.media_type == "application/pdf":
        return "application/pdf"
    return "text/plain; charset=utf-8"  # any text file: HTML and SVG source included


def _response(body: bytes, content_type: str, *, inline: bool, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    # The name is ours (uploads.safe_name): no quote or line break can reach the header.
    response["Content-Disposition"] = content_disposition_header(not inline, filename) or ""
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = SANDBOX
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Cache-Control"] = CACHE
    return response


@login_required
@require_GET
def attachment(request: AuthenticatedHttpRequest, attachment_id: int) -> HttpResponse:
    """The file as uploaded: an image inline (a click on its thumbnail opens it), any
    other file as a download."""
    found = _get_attachment_for_user(request, attachment_id)
    data = AttachmentBlob.objects.filter(pk=found.pk).values_list("data", flat=True).first()
    if data is None:
        raise Http404("No such attachment.")
    content_type = _served_type(found)
    inline = content_type in INLINE_TYPES
    return _response(bytes(data), content_type, inline=inline, filename=found.name)


@login_required
@require_GET
def thumbnail(request: AuthenticatedHttpRequest, attachment_id: int) -> HttpResponse:
    found = _get_attachment_for_user(request, attachment_id)
    rows = AttachmentBlob.objects.filter(pk=found.pk, attachment__kind=Attachment.Kind.IMAGE)
    data = rows.values_list("thumbnail", flat=True).first()
    if not data:
        raise Http404("A file has no thumbnail.")
    name = f"{PurePosixPath(found.name).stem}-thumbnail.webp"
    return _response(bytes(data), THUMBNAIL_MEDIA_TYPE, inline=True, filename=name)
