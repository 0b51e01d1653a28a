from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="provider",
            name="cache_responses",
            field=models.BooleanField(
                default=False,
                help_text="Reuse answers to identical requests made with temperature 0.",
            ),
        ),
        migrations.AddField(
            model_name="provider",
            name="cache_ttl_seconds",
            field=models.PositiveIntegerField(
                default=3600, help_text="How long a cached answer is reused, in seconds."
            ),
        ),
    ]
