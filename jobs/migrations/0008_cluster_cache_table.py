"""The database table of the "cluster" cache (settings.CACHES), where django-q2's clusters report
their status when no Redis is configured. `createcachetable` skips a table that exists."""

from django.core.management import call_command
from django.db import migrations


def cache_table_create(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0007_websocket_tickets")]

    operations = [migrations.RunPython(cache_table_create, migrations.RunPython.noop)]
