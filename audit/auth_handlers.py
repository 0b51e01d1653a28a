"""Sign-ins, sign-outs, failures, lockouts (django-axes) and group membership changes.

Group changes are caught on `m2m_changed` of User.groups, whichever side changes it
(`user.groups.set()`, `group.user_set.add()`, the admin's user form): one record per user
and direction, naming the groups actually added or removed.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.http import HttpRequest

from audit.context import client_ip
from audit.models import EventType
from audit.services import record_event, user_actor
from audit.watchers import actor_for_user_change

# Members before a removal or a clear, left by the pre_ signal for the post_ one.
MEMBERS_BEFORE = "audit_group_members_before"


def logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    record_event(
        EventType.LOGIN_SUCCEEDED,
        obj=user,
        actor=user_actor(user),
        ip_address=client_ip(request),
        detail={"backend": getattr(user, "backend", "")},
    )


def logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is not None:
        record_event(
            EventType.LOGOUT, obj=user, actor=user_actor(user), ip_address=client_ip(request)
        )


def login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Only the username: Django has already masked the password in `credentials`.
    username = str(credentials.get(get_user_model().USERNAME_FIELD, ""))[:150]
    record_event(
        EventType.LOGIN_FAILED,
        obj=_user_named(username),
        ip_address=client_ip(request),
        detail={"username": username},
    )


def locked_out(
    sender: Any,
    request: HttpRequest | None,
    username: str | None,
    ip_address: str | None = None,
    **kwargs: Any,
) -> None:
    username = (username or "")[:150]
    record_event(
        EventType.LOGIN_LOCKED_OUT,
        obj=_user_named(username),
        ip_address=ip_address or client_ip(request),
        detail={"username": username},
    )


def _user_named(username: str) -> Any:
    if not username:
        return None
    return (
        get_user_model()
        ._default_manager.filter(**{get_user_model().USERNAME_FIELD: username})
        .first()
    )


def groups_changed(
    sender: Any,
    instance: Any,
    action: str,
    reverse: bool,
    pk_set: set[Any] | None,
    **kwargs: Any,
) -> None:
    """`instance` is a user (reverse=False, pk_set: group ids) or a group (reverse=True,
    pk_set: user ids)."""
    if action in ("pre_remove", "pre_clear"):
        members = instance.user_set if reverse else instance.groups
        current = set(members.values_list("pk", flat=True))
        vars(instance)[MEMBERS_BEFORE] = current if pk_set is None else current & pk_set
        return
    if action == "post_add":
        changed, verb = set(pk_set or ()), "added"
    elif action in ("post_remove", "post_clear"):
        changed, verb = vars(instance).pop(MEMBERS_BEFORE, set()), "removed"
    else:
        return
    if not changed:
        return
    if reverse:
        for user in get_user_model()._default_manager.filter(pk__in=changed):
            _record_groups(user, verb, [instance.name])
    else:
        names = Group.objects.filter(pk__in=changed).values_list("name", flat=True)
        _record_groups(instance, verb, sorted(names))


def _record_groups(user: Any, verb: str, names: list[str]) -> None:
    record_event(
        EventType.USER_GROUPS_CHANGED,
        obj=user,
        actor=actor_for_user_change(user),
        detail={verb: names},
    )
