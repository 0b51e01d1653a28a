from __future__ import annotations

from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from usage.models import ModelPrice
        from usage.price_cache import price_changed

        post_save.connect(price_changed, sender=ModelPrice, dispatch_uid="usage.price_cache")
        post_delete.connect(price_changed, sender=ModelPrice, dispatch_uid="usage.price_cache")
