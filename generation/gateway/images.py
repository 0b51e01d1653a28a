"""OpenAI's `image_url` content part -> an ImagePart: a data URL decoded and checked, or
an https URL passed on for the provider to fetch (Switchboard never fetches it)."""

from __future__ import annotations

import binascii
import re
from base64 import b64decode
from typing import Any

from generation.gateway.errors import GatewayError, bad_request
from providers.adapters.base import IMAGE_TYPES, ImagePart

_DATA_URL = re.compile(r"data:(?P<type>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)", re.DOTALL)
DETAILS = frozenset({"auto", "low", "high"})

# How each accepted type begins: a part is checked by its bytes, not by what it claims.
_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}


def looks_like(media_type: str, data: bytes) -> bool:
    if media_type == "image/webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return data.startswith(_SIGNATURES.get(media_type, ()))


def _invalid(param: str, message: str) -> GatewayError:
    return bad_request(message, param=param, code="invalid_image_url")


def image_part(value: Any, param: str) -> ImagePart:
    if not isinstance(value, dict):
        raise _invalid(param, f"'{param}' must be an object with a 'url'.")
    url, detail = value.get("url"), value.get("detail")
    if detail is not None and detail not in DETAILS:
        raise _invalid(f"{param}.detail", f"'{param}.detail' must be 'auto', 'low' or 'high'.")
    if not isinstance(url, str) or not url:
        raise _invalid(f"{param}.url", f"'{param}.url' must be a data URL or an https URL.")
    if url.startswith("https://"):
        return ImagePart("", url=url, detail=detail or "")
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise _invalid(
            f"{param}.url",
            f"'{param}.url' must be an https URL or a base64 data URL (data:image/png;base64,...).",
        )
    media_type = match["type"].lower()
    if media_type not in IMAGE_TYPES:
        raise _invalid(
            f"{param}.url", f"Images must be PNG, JPEG, WebP or GIF, not {media_type!r}."
        )
    try:
        data = b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"{param}.url", f"'{param}.url' holds invalid base64.") from None
    if not looks_like(media_type, data):
        raise _invalid(f"{param}.url", f"'{param}.url' is not an image of type {media_type}.")
    return ImagePart(media_type, data, detail=detail or "")
