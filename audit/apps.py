"""The audit log (see `audit.models`): what is recorded, and from where.

One mechanism: `audit.context.AuditContextMiddleware` makes the current request (its
user, its client address) known; signals turn changes into records wherever they are
made (the admin, a service, a sign-in, a shell):

- auth signals: sign-in, sign-out, failure; django-axes' `user_locked_out`;
- `m2m_changed` on User.groups (the admin, single sign-on's `user.groups.set()`);
- the models below, through `audit.registry.watch`: their pre_save reads the audited
  fields' old values, their post_save and post_delete write the records.

One record is written explicitly: an API token's first use of the day
(`generation.api_tokens.ApiToken.authenticate`), which is a conditional update of
`last_used_at`, not a model save.

Why not django-auditlog or django-simple-history: they record every field of a model
(a provider's encrypted key, a message's prompt text) unless each is excluded, their
rows can be edited and deleted, and neither records sign-ins, lockouts or token use.
To audit another model, add one `watch(...)` line below.
"""

from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import (
            user_logged_in,
            user_logged_out,
            user_login_failed,
        )
        from django.db.models.signals import m2m_changed

        from audit import auth_handlers as auth
        from audit.models import EventType
        from audit.registry import ModelAudit, watch
        from audit.watchers import ApiTokenAudit, ProviderAudit, UserAudit

        user_logged_in.connect(auth.logged_in, dispatch_uid="audit:login")
        user_logged_out.connect(auth.logged_out, dispatch_uid="audit:logout")
        user_login_failed.connect(auth.login_failed, dispatch_uid="audit:login_failed")
        user_locked_out.connect(auth.locked_out, dispatch_uid="audit:locked_out")
        groups = get_user_model().groups.through
        m2m_changed.connect(auth.groups_changed, sender=groups, dispatch_uid="audit:groups")

        watch(get_user_model()._meta.label, UserAudit())
        # Deleting a group drops its memberships without an m2m_changed signal.
        watch("auth.Group", ModelAudit(EventType.GROUP_CHANGED, fields=("name",)))
        watch("providers.Provider", ProviderAudit())
        watch("generation.ApiToken", ApiTokenAudit())
        budget = EventType.BUDGET_CHANGED
        watch("usage.BudgetDefault", ModelAudit(budget, fields=("monthly_limit",)))
        watch("usage.UserBudget", ModelAudit(budget, fields=("user", "monthly_limit")))
        watch("usage.TeamBudget", ModelAudit(budget, fields=("group", "monthly_limit")))
        price_fields = (
            "provider_kind",
            "model",
            "match",
            "input_per_mtok",
            "output_per_mtok",
            "cached_input_per_mtok",
            "cache_write_per_mtok",
            "valid_from",
        )
        watch("usage.ModelPrice", ModelAudit(EventType.PRICE_CHANGED, fields=price_fields))
        alias_fields = ("name", "is_active", "is_default_for_chats", "description")
        watch("routing.Alias", ModelAudit(EventType.ALIAS_CHANGED, fields=alias_fields))
        target_fields = ("alias", "priority", "provider", "model", "weight")
        watch("routing.AliasTarget", ModelAudit(EventType.ALIAS_CHANGED, fields=target_fields))
