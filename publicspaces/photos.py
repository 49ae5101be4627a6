"""Checking and re-encoding uploaded photos with Pillow.

An upload is accepted only if Pillow recognises it as one of the allowed formats, its size
in bytes and pixels is within the limits (read from the header, before any decoding, so a
small file that expands to gigapixels is refused cheaply), and it decodes completely. The
stored file is a new encoding of the pixels: EXIF (GPS position, camera serial, time), XMP,
ICC and comments are not copied, and the orientation EXIF asked for is applied to the
pixels first so that nothing looks rotated once the tag is gone.
"""

from __future__ import annotations

import io
import secrets
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


@dataclass
class CleanPhoto:
    file: ContentFile  # named with a random token and the format's extension
    format: str
    width: int
    height: int


def _refuse(message: str) -> ValidationError:
    return ValidationError({"image": [message]}, code="invalid_image")


def clean_photo(upload) -> CleanPhoto:
    """Validates an uploaded file (any file-like object with ``size``/``read``) and returns
    the re-encoded image, or raises ValidationError({"image": [...]})."""
    max_bytes = settings.PUBLICSPACES_PHOTO_MAX_BYTES
    max_side = settings.PUBLICSPACES_PHOTO_MAX_DIMENSION
    stored_side = settings.PUBLICSPACES_PHOTO_STORED_MAX_SIDE
    allowed = list(settings.PUBLICSPACES_PHOTO_FORMATS)

    size = getattr(upload, "size", None)
    if size is not None and size > max_bytes:
        raise _refuse(
            _("The photo is %(size)s MB; at most %(max)s MB is accepted.")
            % {"size": round(size / 1048576, 1), "max": round(max_bytes / 1048576, 1)}
        )
    if hasattr(upload, "seek"):
        upload.seek(0)
    data = upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _refuse(
            _("The photo is larger than %(max)s MB.") % {"max": round(max_bytes / 1048576, 1)}
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=allowed)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse(
            _("The file is not an image in an accepted format (%(formats)s).")
            % {"formats": ", ".join(allowed)}
        ) from None
    except OSError:
        raise _refuse(_("The file is not a readable image.")) from None
    fmt = image.format
    width, height = image.size
    if width > max_side or height > max_side:
        raise _refuse(
            _("The photo is %(w)s×%(h)s pixels; at most %(max)s pixels a side is accepted.")
            % {"w": width, "h": height, "max": max_side}
        )
    if width < 1 or height < 1:
        raise _refuse(_("The image is empty."))
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise _refuse(_("The image is damaged or truncated.")) from None

    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    image.thumbnail((stored_side, stored_side), Image.Resampling.LANCZOS)
    # A new image holding only the pixels: no info dict (EXIF, XMP, ICC, comments) follows.
    clean = Image.new(image.mode, image.size)
    clean.paste(image)
    out = io.BytesIO()
    if fmt == "JPEG":
        clean.save(out, format="JPEG", quality=85, optimize=True)
    elif fmt == "PNG":
        clean.save(out, format="PNG", optimize=True)
    else:
        clean.save(out, format="WEBP", quality=85)
    name = f"{secrets.token_hex(16)}.{_EXTENSIONS[fmt]}"
    return CleanPhoto(
        file=ContentFile(out.getvalue(), name=name),
        format=fmt,
        width=clean.width,
        height=clean.height,
    )
