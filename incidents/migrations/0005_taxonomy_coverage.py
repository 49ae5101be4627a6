"""The categories added to fixtures/taxonomy.csv for the labels CDMX and police.uk publish,
and the labels already imported re-pointed by the new rules.

Only two kinds of stored label move: those still "unclassified" (nobody has decided on
them), and those a rule now files under a sensitive category while they sit in a public
one (e.g. police.uk's "Violence and sexual offences", once filed as assault). Any other
label keeps the category it has, which a planner may have chosen.
"""

from django.db import IntegrityError, migrations, transaction
from django.db.models import ProtectedError, RestrictedError


def apply_new_rules(apps, schema_editor):
    from incidents.profiles import PROFILES
    from incidents.taxonomy import ensure_taxonomy

    category_model = apps.get_model("incidents", "Category")
    label_model = apps.get_model("incidents", "SourceLabel")
    incident_model = apps.get_model("incidents", "Incident")
    # Adds the new categories, leaving the names of existing ones as an admin left them.
    ensure_taxonomy(category_model, overwrite=False)
    by_code = {c.code: c for c in category_model.objects.filter(unclassified=False)}
    for profile in PROFILES.values():
        labels = label_model.objects.filter(source__name=profile.source).select_related("category")
        for label in labels:
            target = by_code.get(profile.category_for(label.label) or "")
            current = label.category
            if target is None or target.pk == current.pk:
                continue
            if not (current.unclassified or (target.sensitive and not current.sensitive)):
                continue
            label_model.objects.filter(pk=label.pk).update(category=target)
            incident_model.objects.filter(label_id=label.pk).update(category=target)
            if current.unclassified and not label_model.objects.filter(category=current).exists():
                try:  # anything else still pointing at the placeholder keeps it
                    with transaction.atomic():
                        category_model.objects.filter(pk=current.pk).delete()
                except (ProtectedError, RestrictedError, IntegrityError):
                    pass


class Migration(migrations.Migration):
    dependencies = [("incidents", "0004_external_id_byte_order")]
    operations = [migrations.RunPython(apply_new_rules, migrations.RunPython.noop)]
