"""A rollup built before RollupState.time_zone existed was built under the configured
TIME_ZONE (there was no other); record it, rather than forcing a full rebuild."""

from __future__ import annotations

from django.conf import settings
from django.db import migrations


def backfill(apps, schema_editor):
    RollupState = apps.get_model("usage", "RollupState")
    RollupState.objects.filter(time_zone="").update(time_zone=settings.TIME_ZONE)


class Migration(migrations.Migration):
    dependencies = [("usage", "0006_rollup_time_zone")]
    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
