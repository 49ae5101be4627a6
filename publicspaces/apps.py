from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PublicSpacesConfig(AppConfig):
    name = "publicspaces"
    verbose_name = _("Public spaces")

    def ready(self):
        from django.conf import settings
        from PIL import Image

        # Pillow's decompression-bomb guard at the photo limit, for every Image.open in the
        # process (Django's ImageField included): a warning above it, an error above twice
        # it. publicspaces.photos checks the limit itself before decoding an upload.
        Image.MAX_IMAGE_PIXELS = settings.PUBLICSPACES_PHOTO_MAX_PIXELS
