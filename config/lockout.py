"""The page a locked-out sign-in gets: our sign-in page with the reason, not a bare 429.

django-axes calls `lockout_response` (AXES_LOCKOUT_CALLABLE) for any sign-in it refuses,
on our page and the admin's alike. axes passes the attempt's response and credentials
too, but not the same way on each path: its async middleware (8.3.1) hands over the
credentials where the response belongs. Nothing here depends on them: the username
comes from the posted form, the wait from the settings.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

# Too Many Requests: what axes answers by default, and what the condition is.
LOCKED_OUT_STATUS = 429


def lockout_response(
    request: HttpRequest, original_response: object = None, credentials: object = None
) -> HttpResponse:
    username = request.POST.get("username", "")[:150]
    cool_off = settings.AXES_COOLOFF_TIME
    context = {
        "form": AuthenticationForm(request, initial={"username": username}),
        "next": request.POST.get("next", ""),
        "locked_out": True,
        "lockout_minutes": round(cool_off.total_seconds() / 60) if cool_off else None,
    }
    return render(request, "registration/login.html", context, status=LOCKED_OUT_STATUS)
