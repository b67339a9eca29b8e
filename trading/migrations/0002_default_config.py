from django.db import migrations


def create_defaults(apps, schema_editor):
    from trading.services.config_defaults import ensure_default_config

    ensure_default_config(apps.get_model("trading", "SystemConfig"))


class Migration(migrations.Migration):
    dependencies = [("trading", "0001_initial")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
