"""The requests our views receive, as the type checker should see them.

django-stubs types `request.user` as `User | AnonymousUser` and knows nothing of the
`request.htmx` that django-htmx's middleware sets. A view annotates its request with one
of these (they are never instantiated: Django still passes its own HttpRequest).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """Any request that went through django-htmx's middleware (all of ours do)."""

    htmx: HtmxDetails


class AuthenticatedHttpRequest(HtmxHttpRequest):
    """A request to a view behind `login_required`: its user is logged in."""

    user: User
