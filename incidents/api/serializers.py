"""Response shapes of the incident API (also its OpenAPI documentation).

No example in here holds a coordinate: the schema is public, incidents are not.
"""

from rest_framework import serializers

from incidents.models import Category, Family
from incidents.selectors import category_name


class CategorySerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField(help_text="name in the active language")

    class Meta:
        model = Category
        fields = ["code", "name", "name_es", "name_en", "family", "sensitive", "unclassified"]

    def get_name(self, category: Category) -> str:
        return category_name(category)


class CategoryCountSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    family = serializers.ChoiceField(choices=Family.choices)
    sensitive = serializers.BooleanField()
    count = serializers.IntegerField()


class IncidentStatsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_category = CategoryCountSerializer(many=True)


class HeatSerializer(serializers.Serializer):
    points = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(), min_length=3, max_length=3),
        help_text="[lat, lon, weight] per grid cell (Leaflet.heat order: latitude first)",
    )
    max = serializers.IntegerField(help_text="largest weight (0 when there are no points)")
    truncated = serializers.BooleanField(help_text="true when the cell cap cut the result")
