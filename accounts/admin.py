from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.utils.translation import gettext_lazy as _

from accounts.models import Role, StaffProfile

User = get_user_model()


class StaffProfileFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        groups = self.data.getlist("groups") if hasattr(self.data, "getlist") else []
        from django.contrib.auth.models import Group

        municipal = Group.objects.filter(pk__in=groups, name=Role.MUNICIPAL).exists()
        district = None
        for form in self.forms:
            if form.cleaned_data and not form.cleaned_data.get("DELETE"):
                district = form.cleaned_data.get("district")
        if municipal and district is None:
            raise ValidationError(_("Municipal staff must be linked to one district."))


class StaffProfileInline(admin.StackedInline):
    model = StaffProfile
    formset = StaffProfileFormSet
    can_delete = False
    max_num = 1
    autocomplete_fields = ["district"]


admin.site.unregister(User)


@admin.register(User)
class BarrioUserAdmin(UserAdmin):
    inlines = [StaffProfileInline]
