from django.db import migrations


def load_taxonomy(apps, schema_editor):
    from incidents.taxonomy import ensure_taxonomy

    ensure_taxonomy(apps.get_model("incidents", "Category"))


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_initial")]
    operations = [migrations.RunPython(load_taxonomy, migrations.RunPython.noop)]
