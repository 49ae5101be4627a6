from django.contrib import admin

from geo.admin import OfflineGISModelAdmin
from neighborhoods.forms import NeighborhoodForm
from neighborhoods.models import BoundarySource, District, Neighborhood, Region
from neighborhoods.services import save_drawn_neighborhood


@admin.register(BoundarySource)
class BoundarySourceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "licence", "synthetic"]
    search_fields = ["name", "slug"]


@admin.register(Region)
class RegionAdmin(OfflineGISModelAdmin):
    list_display = ["name", "code", "metric_srid", "synthetic"]
    search_fields = ["name", "code"]
    readonly_fields = ["geom", "created_at"]


@admin.register(District)
class DistrictAdmin(OfflineGISModelAdmin):
    list_display = ["name", "code", "region", "population", "source"]
    list_filter = ["region"]
    search_fields = ["name", "code"]
    list_select_related = ["region", "source"]


@admin.register(Neighborhood)
class NeighborhoodAdmin(OfflineGISModelAdmin):
    form = NeighborhoodForm
    list_display = ["name", "code", "district", "region", "population", "drawn"]
    list_filter = ["region", "drawn"]
    search_fields = ["name", "code"]
    list_select_related = ["region", "district"]
    autocomplete_fields = ["district"]

    def save_model(self, request, obj, form, change):
        save_drawn_neighborhood(neighborhood=obj)
