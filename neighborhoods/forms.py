from django import forms
from django.contrib.gis.geos import MultiPolygon
from django.utils.translation import gettext_lazy as _

from neighborhoods.models import Neighborhood


class NeighborhoodForm(forms.ModelForm):
    """Program staff draw a barrio on the map; a bad drawing is an error, not a 500."""

    class Meta:
        model = Neighborhood
        fields = ["region", "code", "name", "district", "population", "geom"]

    def clean_geom(self):
        geom = self.cleaned_data["geom"]
        if geom is None:
            return geom
        if geom.geom_type == "Polygon":
            geom = MultiPolygon(geom, srid=geom.srid)
        if geom.empty:
            raise forms.ValidationError(_("Draw at least one polygon."))
        if not geom.valid:
            raise forms.ValidationError(
                _("The drawn shape is not a valid polygon (%(reason)s): it must not cross itself.")
                % {"reason": geom.valid_reason}
            )
        return geom
