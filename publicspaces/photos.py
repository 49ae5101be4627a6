"""Checking and re-encoding uploaded photos with Pillow.

An upload is accepted only if Pillow recognises it as one of the allowed formats, its size
in bytes, its pixel count and its sides are within the limits (read from the header, before
any decoding, so a small file that expands to gigapixels is refused cheaply: a 9,400 × 9,400
PNG of a few KB would otherwise cost hundreds of MB and seconds to decode), and it decodes
completely. Pillow's own guard (``Image.MAX_IMAGE_PIXELS``) is set to the same pixel limit
for the whole process at start-up (``publicspaces.apps``). The stored file is a new
encoding of the pixels: EXIF (GPS position, camera serial, time), XMP, ICC and comments are
not copied, and the orientation EXIF asked for is applied to the pixels first so that
nothing looks rotated once the tag is gone.
"""

from __future__ import annotations

import io
import logging
import secrets
import struct
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


@dataclass
class CleanPhoto:
    file: ContentFile  # named with a random token and the format's extension
    format: str
    width: int
    height: int


# Room for the multipart boundaries and the other form fields around the file.
_FORM_OVERHEAD_BYTES = 64 * 1024


def upload_too_large(request) -> bool:
    """Whether the request body is larger than one photo can be, judged from its
    Content-Length before Django reads it: Django spools any upload, whatever its size, to
    a temporary file (DATA_UPLOAD_MAX_MEMORY_SIZE does not count files), so without this a
    logged-in user could fill the disk. The web server should cap bodies as well."""
    length = request.META.get("CONTENT_LENGTH") or ""
    limit = settings.PUBLICSPACES_PHOTO_MAX_BYTES + _FORM_OVERHEAD_BYTES
    return length.isdigit() and int(length) > limit


def _refuse(message: str) -> ValidationError:
    return ValidationError({"image": [message]}, code="invalid_image")


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:.1f}".removesuffix(".0")


def _too_many_pixels(max_pixels: int, size: tuple[int, int] | None = None) -> ValidationError:
    if size is None:  # Pillow refused it outright (more than twice its limit)
        return _refuse(
            _("The image is too large: at most %(max)s megapixels are accepted.")
            % {"max": _megapixels(max_pixels)}
        )
    width, height = size
    return _refuse(
        _(
            "The image is too large: %(w)s×%(h)s pixels is %(mp)s megapixels; at most "
            "%(max)s megapixels are accepted."
        )
        % {
            "w": width,
            "h": height,
            "mp": _megapixels(width * height),
            "max": _megapixels(max_pixels),
        }
    )


def clean_photo(upload) -> CleanPhoto:
    """Validates an uploaded file (any file-like object with ``size``/``read``) and returns
    the re-encoded image, or raises ValidationError({"image": [...]})."""
    max_bytes = settings.PUBLICSPACES_PHOTO_MAX_BYTES
    max_side = settings.PUBLICSPACES_PHOTO_MAX_DIMENSION
    max_pixels = settings.PUBLICSPACES_PHOTO_MAX_PIXELS
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
        # Image.open reads the header only. Above Image.MAX_IMAGE_PIXELS Pillow warns (the
        # pixel count is refused just below, with the image's size in the message) and
        # above twice that it raises.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=allowed)
    except Image.DecompressionBombError:
        raise _too_many_pixels(max_pixels) from None
    except UnidentifiedImageError:
        raise _refuse(
            _("The file is not an image in an accepted format (%(formats)s).")
            % {"formats": ", ".join(allowed)}
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error):
        # Damaged headers surface as any of these, depending on the format plugin.
        raise _refuse(_("The file is not a readable image.")) from None
    fmt = image.format
    width, height = image.size
    if width * height > max_pixels:
        raise _too_many_pixels(max_pixels, (width, height))
    if width > max_side or height > max_side:
        raise _refuse(
            _("The photo is %(w)s×%(h)s pixels; at most %(max)s pixels a side is accepted.")
            % {"w": width, "h": height, "max": max_side}
        )
    if width < 1 or height < 1:
        raise _refuse(_("The image is empty."))
    if fmt == "JPEG":
        # The decoder scales by 1/2 to 1/8 while reading when the stored copy is smaller
        # anyway: a quarter to a sixty-fourth of the memory for a large photo. The size asked
        # for is the stored copy's (both sides at least it), not a square: a 6000×4000
        # photo's short side would otherwise keep it at full size.
        scale = min(1.0, stored_side / max(width, height))
        image.draft(image.mode, (max(1, int(width * scale)), max(1, int(height * scale))))
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError, struct.error):
        raise _refuse(_("The image is damaged or truncated.")) from None
    try:
        # In place: without an orientation to apply, no full-size copy is made.
        ImageOps.exif_transpose(image, in_place=True)
    except Exception as exc:  # noqa: BLE001 - any parser error in the EXIF block
        # The pixels decoded; only the EXIF (dropped anyway) is broken, so its orientation
        # cannot be trusted either: keep the picture as stored.
        logger.info("photo EXIF unreadable, orientation ignored: %r", exc)

    if image.mode == "1":
        image = image.convert("L")  # one byte a pixel (RGB takes four): still black and white
    elif image.mode not in ("RGB", "RGBA", "L", "LA"):
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
