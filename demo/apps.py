from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Loads the built-in synthetic demo city; each app contributes its own part."""

    name = "demo"
    verbose_name = "Demo city"
