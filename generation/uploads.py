"""Checking the files a user attaches to a chat message, by what their bytes hold.

Accepted: PNG, JPEG, WebP and GIF images (their magic bytes, then decoded by Pillow),
PDFs with text to read (the %PDF header, then parsed by pypdf), and UTF-8 text (plain
text, Markdown, CSV, JSON, source code). The name and the type the browser sent are
never trusted to accept a file; they only make a refusal more precise (a ".png" that
holds no PNG). Any refusal is an UploadRefused whose message the composer shows.
"""

from __future__ import annotations

import io
import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from PIL import Image, ImageOps
from pypdf import PdfReader

from generation.attachments import (
    NAME_MAX,
    THUMBNAIL_SIZE,
    Attachment,
    attachment_part,
)
from providers.adapters.base import Part

ACCEPTED = (
    "PNG, JPEG, WebP or GIF images, PDFs, or UTF-8 text files "
    "(plain text, Markdown, CSV, JSON, source code)"
)
# Magic bytes of the accepted images; Pillow then decodes the file with that format only.
IMAGE_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG", "image/png"),
    (b"\xff\xd8\xff", "JPEG", "image/jpeg"),
    (b"GIF87a", "GIF", "image/gif"),
    (b"GIF89a", "GIF", "image/gif"),
)
# Larger images are refused before they are decoded (a small file can hold a huge
# image); the providers scale anything this big down anyway. 25 million covers a 24 MP
# camera's photos; decoded as RGBA it is 100 MB, so only DECODES_AT_ONCE run at a time.
MAX_IMAGE_PIXELS = 25_000_000
DECODES_AT_ONCE = threading.BoundedSemaphore(2)
# A PDF's pages are counted before any is read: a small file can hold a huge page tree,
# and reading blank pages costs time though they add no text.
MAX_PDF_PAGES = 2000
# Names a browser gives an image: such a file must be one of the accepted images.
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".gif", ".webp", ".svg", ".svgz", ".bmp", ".ico"}
    | {".tif", ".tiff", ".heic", ".heif", ".avif", ".jxl"}
)
# A text file whose first element is <svg> is an SVG image, which we do not take: it
# can carry script, and no provider reads it as an image.
SVG_START = re.compile(
    r"\A\s*(?:<\?[^>]*\?>\s*|<!--.*?-->\s*|<!DOCTYPE[^>]*>\s*)*<svg[\s>/]", re.I | re.S
)
# Control characters no text file holds (whitespace and the escape of coloured logs are
# left out): more than a few of them, and the "text" is binary that happens to decode.
BINARY_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
PDF_HEADER_WITHIN = 1024  # readers accept the header a little way into the file


class UploadRefused(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Thumbnail:
    data: bytes = field(repr=False)
    width: int
    height: int


@dataclass(frozen=True)
class Upload:
    """One checked file, ready to store and to send."""

    kind: str  # an Attachment.Kind
    name: str  # safe to show and to put in a header
    media_type: str  # from the bytes
    data: bytes = field(repr=False)
    text: str = field(default="", repr=False)  # a file's text; a PDF's, extracted
    thumbnail: Thumbnail | None = None  # an image's

    def part(self) -> Part:
        return attachment_part(self.kind, self.name, self.media_type, self.data, self.text)


def _limits() -> tuple[int, int, int]:
    limits = settings.SWITCHBOARD  # the defaults are config/settings.py's
    return (
        int(limits.get("ATTACHMENTS_PER_MESSAGE", 8)),
        int(limits.get("ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)),
        int(limits.get("ATTACHMENTS_MAX_TOTAL_BYTES", 20 * 1024 * 1024)),
    )


def check_uploads(files: Sequence[UploadedFile[bytes]]) -> list[Upload]:
    """Every file checked (limits first, then each one's bytes), or UploadRefused for the
    first that fails: a message is sent with all its files or not at all."""
    if not files:
        return []
    per_message, per_file, total = _limits()
    if len(files) > per_message:
        raise UploadRefused(
            f"A message can carry at most {per_message} files (this one has {len(files)})."
        )
    for upload in files:
        if (upload.size or 0) > per_file:
            raise UploadRefused(
                f"“{safe_name(upload.name or '')}” is {filesizeformat(upload.size or 0)}: "
                f"a file can be at most {filesizeformat(per_file)}."
            )
    together = sum(upload.size or 0 for upload in files)
    if together > total:
        raise UploadRefused(
            f"These files come to {filesizeformat(together)}: the files of one message "
            f"can be at most {filesizeformat(total)} together."
        )
    return [check_upload(upload) for upload in files]


def check_upload(upload: UploadedFile[bytes]) -> Upload:
    raw_name = upload.name or ""
    name = safe_name(raw_name)
    data = b"".join(upload.chunks())
    if not data:
        raise UploadRefused(f"“{name}” is empty.")
    claims_image = (upload.content_type or "").lower().startswith("image/") or _suffix(
        raw_name
    ) in IMAGE_SUFFIXES
    if image := _image_format(data):
        return _image(name, data, *image)
    if claims_image or _looks_like_svg(data):
        if _suffix(raw_name) in {".svg", ".svgz"} or _looks_like_svg(data):
            raise UploadRefused(
                f"“{name}” is an SVG image: only PNG, JPEG, WebP and GIF images can be attached."
            )
        raise UploadRefused(f"“{name}” is not a PNG, JPEG, WebP or GIF image (or it is damaged).")
    if b"%PDF-" in data[:PDF_HEADER_WITHIN]:
        return _pdf(name, data)
    if _suffix(raw_name) == ".pdf" or upload.content_type == "application/pdf":
        raise UploadRefused(f"“{name}” is not a PDF (or it is damaged).")
    return _text(name, data)


def safe_name(raw: str) -> str:
    """A display name that is only a name: no folders, no control or invisible format
    characters (a right-to-left override could make "txt.exe" read "exe.txt"), no
    leading dots, at most NAME_MAX characters with its extension kept."""
    name = unicodedata.normalize("NFC", raw.replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = " ".join(name.split()).strip(" .")
    if len(name) > NAME_MAX:
        suffix = PurePosixPath(name).suffix
        suffix = suffix if len(suffix) <= 16 else ""
        name = name[: NAME_MAX - len(suffix)].rstrip(" .") + suffix
    return name or "file"


def _suffix(raw_name: str) -> str:
    return PurePosixPath(safe_name(raw_name)).suffix.lower()


def _image_format(data: bytes) -> tuple[str, str] | None:
    """(Pillow's format, media type) that the magic bytes name, or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP", "image/webp"
    for signature, pillow_format, media_type in IMAGE_SIGNATURES:
        if data.startswith(signature):
            return pillow_format, media_type
    return None


def _looks_like_svg(data: bytes) -> bool:
    head = data[:4096].decode("utf-8", errors="replace").lstrip("\ufeff")
    return bool(SVG_START.match(head))


def _image(name: str, data: bytes, pillow_format: str, media_type: str) -> Upload:
    damaged = UploadRefused(f"“{name}” is not a PNG, JPEG, WebP or GIF image (or it is damaged).")
    try:
        with Image.open(io.BytesIO(data), formats=[pillow_format]) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise UploadRefused(
                    f"“{name}” is {image.width} by {image.height} pixels: an image can have at "
                    f"most {MAX_IMAGE_PIXELS // 1_000_000} million."
                )
            image.verify()  # the file's structure, before any pixel is decoded
        with (
            DECODES_AT_ONCE,
            Image.open(io.BytesIO(data), formats=[pillow_format]) as image,
        ):
            thumbnail = _thumbnail(image)
    except UploadRefused:
        raise
    except Exception as exc:  # Pillow raises many kinds on a damaged or hostile file
        raise damaged from exc
    return Upload(Attachment.Kind.IMAGE, name, media_type, data, thumbnail=thumbnail)


def _thumbnail(image: Image.Image) -> Thumbnail:
    """At most THUMBNAIL_SIZE a side, upright (as the camera's EXIF says), as WebP. The
    first frame of an animation. Decoding it here also finds a truncated file."""
    # Shrunk first, then turned and converted: the full-size image is decoded once (a
    # JPEG at a reduced scale already, through draft()) and never copied at full size.
    image.draft("RGB", (THUMBNAIL_SIZE * 2, THUMBNAIL_SIZE * 2))
    image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), reducing_gap=2.0)  # keeps its EXIF
    small = ImageOps.exif_transpose(image)
    has_alpha = small.mode in {"RGBA", "LA", "PA"} or "transparency" in small.info
    small = small.convert("RGBA" if has_alpha else "RGB")
    out = io.BytesIO()
    small.save(out, format="WEBP", quality=80)
    return Thumbnail(out.getvalue(), small.width, small.height)


def _text_limit() -> int:
    return int(settings.SWITCHBOARD.get("MAX_PROMPT_CHARS", 200_000))


def _too_long(name: str, length: int) -> UploadRefused:
    return UploadRefused(
        f"“{name}” holds {length:,} characters of text: a message is at most "
        f"{_text_limit():,} characters."
    )


def _pdf(name: str, data: bytes) -> Upload:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UploadRefused(f"“{name}” is protected by a password: attach a copy without one.")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise UploadRefused(
                f"“{name}” has {len(reader.pages):,} pages: a PDF can have at most "
                f"{MAX_PDF_PAGES:,}. Attach the part you need."
            )
        pages: list[str] = []
        length = 0
        for page in reader.pages:
            # Its own text, NULs dropped (no database column takes them).
            text = (page.extract_text() or "").replace("\x00", "").strip()
            pages.append(text)
            length += len(text)
            if length > _text_limit():  # stop reading: it cannot be sent anyway
                raise _too_long(name, length)
    except UploadRefused:
        raise
    except Exception as exc:  # pypdf raises many kinds on a damaged or hostile file
        raise UploadRefused(f"“{name}” could not be read as a PDF (it may be damaged).") from exc
    text = "\n\n".join(page for page in pages if page)
    if not text.strip():
        raise UploadRefused(
            f"“{name}” has no text to read (it may be scanned pages): Switchboard sends a "
            "PDF's text, so attach the pages as images instead."
        )
    return Upload(Attachment.Kind.FILE, name, "application/pdf", data, text=text)


def _text(name: str, data: bytes) -> Upload:
    unreadable = UploadRefused(f"“{name}” is not a file Switchboard can read: attach {ACCEPTED}.")
    if b"\x00" in data:
        raise unreadable
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise unreadable from None
    if len(BINARY_CONTROLS.findall(text)) * 100 > len(text):  # more than 1% of it
        raise unreadable
    if len(text) > _text_limit():
        raise _too_long(name, len(text))
    return Upload(Attachment.Kind.FILE, name, "text/plain", data, text=text)
