"""Photos are bounded by their pixel count, read from the header before anything decodes
(issue 10, item 5): a PNG of a few KB that expands to 88 megapixels is refused as "too
large", with the limit, on every upload path (page, API, admin), and nothing is stored."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation
from PIL import Image, ImageFile, JpegImagePlugin

from publicspaces.models import ChangeRecord, ProjectPhoto
from publicspaces.photos import clean_photo
from publicspaces.services.projects import create_project
from publicspaces.services.spaces import create_space
from publicspaces.tests.conftest import inside_norte, jpeg_bytes, square

pytestmark = pytest.mark.django_db

BOMB_SIDE = 9400  # 88.4 megapixels: more than twice the limit, so Pillow refuses it too
OVER_SIDE = 6000  # 36 megapixels: over the limit, under Pillow's hard error


def png_bytes(width: int, height: int) -> bytes:
    """A black 1-bit PNG: 9,400 × 9,400 is 11 KB to send and 88 million pixels to decode."""
    out = io.BytesIO()
    Image.new("1", (width, height)).save(out, format="PNG", optimize=True)
    return out.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = png_bytes(BOMB_SIDE, BOMB_SIDE)
    assert len(data) < 100_000
    return data


@pytest.fixture
def never_decodes(monkeypatch):
    """Fails the test if Pillow starts decoding pixels."""

    def load(self):
        raise AssertionError(f"decoded a {self.size} image")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


@pytest.fixture
def project(users):
    space = create_space(
        user=users["norte"],
        name="Parque Norte",
        kind="park",
        geom=square(inside_norte().x, inside_norte().y),
    )
    return create_project(
        user=users["norte"], space=space, title="Obra", identified_on=dt.date(2025, 1, 2)
    )


def _refusal(data: bytes, language: str) -> str:
    with translation.override(language), pytest.raises(ValidationError) as refused:
        clean_photo(SimpleUploadedFile("big.png", data))
    [message] = refused.value.message_dict["image"]
    return message


def _nothing_stored(media_root) -> bool:
    files = [p for p in media_root.rglob("*") if p.is_file()] if media_root.exists() else []
    return (
        not ProjectPhoto.objects.exists()
        and not ChangeRecord.objects.filter(object_type="projectphoto").exists()
        and not files
    )


def test_the_default_limit_and_pillows_own_guard_agree():
    assert django_settings.PUBLICSPACES_PHOTO_MAX_PIXELS == 25_000_000
    assert Image.MAX_IMAGE_PIXELS == django_settings.PUBLICSPACES_PHOTO_MAX_PIXELS


def test_a_bomb_is_too_large_in_both_languages_without_being_decoded(bomb, never_decodes):
    assert _refusal(bomb, "en") == ("The image is too large: at most 25 megapixels are accepted.")
    assert _refusal(bomb, "es") == (
        "La imagen es demasiado grande: se aceptan como máximo 25 megapíxeles."
    )


def test_over_the_limit_the_message_gives_the_size_and_the_limit(never_decodes):
    data = png_bytes(OVER_SIDE, OVER_SIDE)
    assert _refusal(data, "en") == (
        "The image is too large: 6000×6000 pixels is 36 megapixels; at most 25 megapixels "
        "are accepted."
    )
    assert _refusal(data, "es") == (
        "La imagen es demasiado grande: 6000×6000 píxeles son 36 megapíxeles; se aceptan "
        "como máximo 25 megapíxeles."
    )


def test_the_limit_counts_pixels_not_sides(settings):
    settings.PUBLICSPACES_PHOTO_MAX_PIXELS = 64 * 48
    assert (clean_photo(SimpleUploadedFile("a.jpg", jpeg_bytes((64, 48)))).width) == 64
    with translation.override("en"), pytest.raises(ValidationError) as refused:
        clean_photo(SimpleUploadedFile("a.jpg", jpeg_bytes((65, 48))))
    [message] = refused.value.message_dict["image"]
    assert message.startswith("The image is too large: 65×48 pixels")


def test_a_one_bit_image_is_stored_as_grey_levels():
    stored = clean_photo(SimpleUploadedFile("a.png", png_bytes(120, 80)))
    assert Image.open(io.BytesIO(stored.file.read())).mode == "L"


def test_a_large_jpeg_decodes_at_the_scale_of_its_stored_copy(settings, monkeypatch):
    settings.PUBLICSPACES_PHOTO_STORED_MAX_SIDE = 100
    decoded = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = draft(self, mode, size)
        decoded.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    stored = clean_photo(SimpleUploadedFile("wide.jpg", jpeg_bytes((600, 300))))
    # A quarter of each side (the stored copy is 100 × 50), not half as a square target
    # of 100 × 100 would give. (Image.thumbnail asks again, once loaded: a no-op.)
    assert decoded[0] == (150, 75)
    assert (stored.width, stored.height) == (100, 50)


# --- every upload path ---------------------------------------------------------------------


def test_the_page_form_says_too_large_and_stores_nothing(
    client, users, project, bomb, media_root, never_decodes
):
    client.force_login(users["norte"])
    response = client.post(
        reverse("publicspaces:project-photo", args=[project.pk]),
        {
            f"ph{project.pk}-stage": "before",
            f"ph{project.pk}-image": SimpleUploadedFile("big.png", bomb, "image/png"),
        },
    )
    assert response.status_code == 400
    [block] = response.context["projects"]
    assert block["photo_form"].errors["image"] == [
        "La imagen es demasiado grande: se aceptan como máximo 25 megapíxeles."
    ]
    assert _nothing_stored(media_root)


def test_the_api_says_too_large_and_stores_nothing(
    client, users, project, bomb, media_root, never_decodes
):
    client.force_login(users["norte"])
    response = client.post(
        f"/api/v1/recovery-projects/{project.pk}/photos/",
        {"stage": "after", "image": SimpleUploadedFile("big.png", bomb)},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    assert response.json()["image"] == [
        "The image is too large: at most 25 megapixels are accepted."
    ]
    assert _nothing_stored(media_root)


def test_the_admin_says_too_large_and_stores_nothing(
    client, users, project, bomb, media_root, never_decodes
):
    client.force_login(users["norte"])
    url = reverse("admin:publicspaces_projectphoto_add")
    for data, message in [
        (bomb, "La imagen es demasiado grande: se aceptan como máximo 25 megapíxeles."),
        (
            png_bytes(OVER_SIDE, OVER_SIDE),
            "La imagen es demasiado grande: 6000×6000 píxeles son 36 megapíxeles; se aceptan "
            "como máximo 25 megapíxeles.",
        ),
    ]:
        response = client.post(
            url,
            {"project": project.pk, "stage": "before", "image": SimpleUploadedFile("b.png", data)},
        )
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["image"] == [message]
    assert _nothing_stored(media_root)
