from django.urls import path

from maps import views

urlpatterns = [
    path("", views.public_map, name="public-map"),
]
