"""The run list's filters (a GET form): region, method, status, author, and whether
superseded runs are shown."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from hotspots import selectors
from hotspots.models import HotspotRun
from neighborhoods.selectors import region_list


class _AuthorField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.get_username()


class RunFilterForm(forms.Form):
    region = forms.ModelChoiceField(
        label=_("Region"),
        queryset=region_list().only("pk", "code", "name"),
        to_field_name="code",
        required=False,
        empty_label=_("All regions"),
    )
    method = forms.ChoiceField(
        label=_("Method"),
        choices=[("", _("All methods")), *HotspotRun.Method.choices],
        required=False,
    )
    status = forms.ChoiceField(
        label=_("Status"),
        choices=[("", _("Any status")), *HotspotRun.Status.choices],
        required=False,
    )
    author = _AuthorField(
        label=_("By"),
        queryset=selectors.run_authors(),
        required=False,
        empty_label=_("Anybody"),
    )
    superseded = forms.BooleanField(label=_("Show superseded runs"), required=False)

    def filters(self) -> dict:
        """The selector's arguments from the fields that are valid (an invalid one is shown
        with its error and filters nothing)."""
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        data = self.cleaned_data
        return {
            "region": data.get("region"),
            "method": data.get("method") or None,
            "status": data.get("status") or None,
            "author": data.get("author"),
        }

    def show_superseded(self) -> bool:
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        return bool(self.cleaned_data.get("superseded"))
