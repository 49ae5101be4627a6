from django.apps import AppConfig


class OpenDataConfig(AppConfig):
    """The real public data sets Barrio knows how to load (boundaries and incidents)."""

    name = "opendata"
    verbose_name = "Open-data packs"
