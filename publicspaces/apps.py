from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PublicSpacesConfig(AppConfig):
    name = "publicspaces"
    verbose_name = _("Public spaces")
