"""Settings and labels of the public-space layers, for map templates owned by other apps."""

from django import template

register = template.Library()


@register.simple_tag
def public_spaces_layer_config() -> dict:
    """The public map's layer of recovered spaces (use with ``json_script``)."""
    from publicspaces.layers import public_layer_config

    return public_layer_config()
