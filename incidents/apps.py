from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = _("Incidents")

    def ready(self):
        from incidents.taxonomy import ensure_taxonomy_after_migrate

        post_migrate.connect(ensure_taxonomy_after_migrate, dispatch_uid="barrio-taxonomy")
