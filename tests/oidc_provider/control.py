"""What the tests ask of the provider: people, their groups, and client registrations."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from oauth2_provider.models import Application


def _body(request: HttpRequest) -> dict | None:
    # The provider's own settings (tests/oidc_provider/settings.py), not Switchboard's.
    if request.headers.get("X-Control-Token") != getattr(settings, "CONTROL_TOKEN", None):
        return None
    return json.loads(request.body)


@csrf_exempt
@require_POST
def person(request: HttpRequest) -> JsonResponse:
    """Create or update a person: username, password, email, given_name, groups."""
    data = _body(request)
    if data is None:
        return JsonResponse({"error": "forbidden"}, status=403)
    user, _ = User.objects.get_or_create(username=data["username"])
    user.email = data.get("email", "")
    user.first_name = data.get("given_name", "")
    user.set_password(data["password"])
    user.save()
    user.groups.set([Group.objects.get_or_create(name=name)[0] for name in data["groups"]])
    return JsonResponse({"sub": str(user.pk)})


@csrf_exempt
@require_POST
def client(request: HttpRequest) -> JsonResponse:
    """Register a confidential authorization-code client (RS256, no consent screen)."""
    data = _body(request)
    if data is None:
        return JsonResponse({"error": "forbidden"}, status=403)
    Application.objects.filter(client_id=data["client_id"]).delete()
    Application.objects.create(
        name=data["client_id"],
        client_id=data["client_id"],
        client_secret=data["client_secret"],
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=" ".join(data["redirect_uris"]),
        post_logout_redirect_uris=" ".join(data.get("post_logout_redirect_uris", [])),
        algorithm=Application.RS256_ALGORITHM,
        skip_authorization=True,
    )
    return JsonResponse({"client_id": data["client_id"]})
