from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GenerationConfig(AppConfig):
    name = "generation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from generation.search_sqlite import repair_index

        # A later migration that rebuilds a chat table on SQLite drops the search
        # index's triggers: every migrate checks for them.
        post_migrate.connect(repair_index, sender=self, dispatch_uid="generation.search")
