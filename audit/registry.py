"""Which models are audited, and how a save or a delete becomes audit records.

Adding a model is one line in `audit.apps` (`watch`), naming its event and the fields
whose before and after values the record keeps:

    watch("usage.TeamBudget", ModelAudit(EventType.BUDGET_CHANGED, fields=("group", "limit")))

Only the named fields are ever read into a record, so a secret in another field (a
provider's key) cannot leak in. The values before a change are read from the database in
`pre_save` (one query per save of an audited row, and none when `update_fields` names no
audited field), kept on the instance until `post_save` compares them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.db.models.signals import post_delete, post_save, pre_save

from audit.context import Actor
from audit.models import EventType
from audit.services import record_event

# Where pre_save leaves the values read from the database for post_save.
BEFORE = "audit_values_before_save"

Values = dict[str, Any]
Changes = dict[str, list[Any]]
Entry = tuple[EventType, dict[str, object]]


class ModelAudit:
    """Records `event` with {"action": created/changed/deleted, "changes": {field: [before,
    after]}} for the named fields. Subclasses split a change into several events."""

    def __init__(
        self,
        event: EventType,
        *,
        fields: tuple[str, ...],
        created: EventType | None = None,
        deleted: EventType | None = None,
    ) -> None:
        self.event = event
        self.fields = fields
        self.created_event = created or event
        self.deleted_event = deleted or event

    @property
    def watched_fields(self) -> set[str]:
        """A save whose update_fields names none of these is not looked at."""
        return set(self.fields)

    def actor(self, instance: models.Model) -> Actor | None:
        """Who the record names; None: the current request's user (`audit.context`)."""
        return None

    def attnames(self, model: type[models.Model]) -> list[str]:
        # A foreign key's id: the values compare without loading related rows.
        return [model._meta.get_field(name).attname for name in self.fields]  # type: ignore[union-attr]

    def values_before(self, instance: models.Model) -> Values | None:
        model = type(instance)
        attnames = self.attnames(model)
        row = model._base_manager.filter(pk=instance.pk).values(*attnames).first()
        if row is None:
            return None
        return {name: row[attname] for name, attname in zip(self.fields, attnames, strict=True)}

    def changes(self, instance: models.Model, before: Values) -> Changes:
        """{field: [before, after]} of the fields that changed, related rows by name."""
        attnames = self.attnames(type(instance))
        changes: Changes = {}
        for name, attname in zip(self.fields, attnames, strict=True):
            value = getattr(instance, attname)
            if before.get(name) != value:
                old = readable_id(type(instance), name, before.get(name))
                changes[name] = [old, readable(instance, name)]
        return changes

    def values_of(self, instance: models.Model) -> Values:
        return {name: readable(instance, name) for name in self.fields}

    def created(self, instance: models.Model) -> Iterable[Entry]:
        changes = {name: [None, value] for name, value in self.values_of(instance).items()}
        yield self.created_event, {"action": "created", "changes": changes}

    def changed(self, instance: models.Model, before: Values) -> Iterable[Entry]:
        changes = self.changes(instance, before)
        if changes:
            yield self.event, {"action": "changed", "changes": changes}

    def deleted(self, instance: models.Model) -> Iterable[Entry]:
        changes = {name: [value, None] for name, value in self.values_of(instance).items()}
        yield self.deleted_event, {"action": "deleted", "changes": changes}


def readable(instance: models.Model, name: str) -> Any:
    """A field's value for a record: a related object by its name, not its id."""
    field = instance._meta.get_field(name)
    if isinstance(field, models.ForeignKey):
        try:
            related = getattr(instance, name)
        except ObjectDoesNotExist:
            return getattr(instance, field.attname)
        return None if related is None else str(related)
    return getattr(instance, name)


def readable_id(model: type[models.Model], name: str, value: Any) -> Any:
    field = model._meta.get_field(name)
    if isinstance(field, models.ForeignKey) and value is not None:
        related = field.related_model._base_manager.filter(pk=value).first()
        return str(related) if related is not None else value
    return value


_audits: dict[type[models.Model], ModelAudit] = {}


def watch(model_label: str, audit: ModelAudit) -> None:
    """Audit saves and deletes of a model ("app_label.ModelName")."""
    model = apps.get_model(model_label)
    _audits[model] = audit
    uid = f"audit:{model_label}"
    pre_save.connect(_pre_save, sender=model, dispatch_uid=uid)
    post_save.connect(_post_save, sender=model, dispatch_uid=uid)
    post_delete.connect(_post_delete, sender=model, dispatch_uid=uid)


def audited_models() -> list[type[models.Model]]:
    return list(_audits)


def _pre_save(
    sender: type[models.Model],
    instance: models.Model,
    raw: bool = False,
    update_fields: frozenset[str] | None = None,
    **kwargs: Any,
) -> None:
    audit = _audits[sender]
    if raw or instance._state.adding or instance.pk is None:
        return
    if update_fields is not None and not (set(update_fields) & audit.watched_fields):
        return  # e.g. a sign-in saving last_login: nothing audited can change
    vars(instance)[BEFORE] = audit.values_before(instance)


def _post_save(
    sender: type[models.Model],
    instance: models.Model,
    created: bool = False,
    raw: bool = False,
    **kwargs: Any,
) -> None:
    audit = _audits[sender]
    before = vars(instance).pop(BEFORE, None)
    if raw:
        return  # loaddata
    if created:
        entries = audit.created(instance)
    elif before is not None:
        entries = audit.changed(instance, before)
    else:
        return
    for event, detail in entries:
        record_event(event, obj=instance, detail=detail, actor=audit.actor(instance))


def _post_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    audit = _audits[sender]
    for event, detail in audit.deleted(instance):
        record_event(event, obj=instance, detail=detail, actor=audit.actor(instance))
