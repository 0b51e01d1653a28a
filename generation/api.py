"""POST /api/generate: one non-streamed generation as JSON, for people and scripts.

Answers ``{"success": true, "data": {...}}`` or ``{"success": false, "error": {kind,
message, retryable, field?}}`` with a status that says what happened: 400 bad input (the
field named: bad JSON, text that cannot be encoded, a bad parameter), 401 no or bad
credentials, 402 over budget, 404 unknown or inactive provider, 429 / 502 / 503 / 504 for
upstream failures (`generation.json_api.STATUS_BY_ERROR_KIND`, shared with /v1). A client
that hangs up mid-call is still metered for what went upstream.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from generation.api_input import ApiInputError, parse_generate_body
from generation.api_services import generate_for_api, generate_routed_for_api
from generation.api_tokens import ApiToken
from generation.gateway.ratelimit import seconds_until_allowed
from generation.json_api import STATUS_BY_ERROR_KIND, BadBody, read_json_body
from providers.models import Provider
from providers.validation import InvalidRequest
from routing.services import AliasUnavailable, find_alias, planned_targets
from usage.budgets import BudgetExceeded


def _error(status: int, kind: str, message: str, **extra: Any) -> JsonResponse:
    error = {"kind": kind, "message": message, "retryable": False, **extra}
    return JsonResponse({"success": False, "error": error}, status=status)


def _not_called(request: HttpRequest) -> HttpResponse:
    """The get_response and the (not csrf_exempt) view that CsrfViewMiddleware wants:
    its process_view check alone calls neither."""
    raise AssertionError("CsrfViewMiddleware.process_view called its view")


def _authenticate(request: HttpRequest) -> User | JsonResponse:
    """A personal API token (Authorization: Bearer), or the session with its CSRF check."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, raw = header.partition(" ")
        token = ApiToken.authenticate(raw.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            return _error(401, "unauthenticated", "The API token is missing, wrong or revoked.")
        # The token's limit counts its calls here and on /v1 alike.
        wait = seconds_until_allowed(token)
        if wait is not None:
            limit = token.requests_per_minute
            message = f"Rate limit reached for this API token: {limit} requests per minute."
            response = _error(429, "rate_limit", message, retryable=True)
            response["Retry-After"] = str(math.ceil(wait))
            return response
        return token.user
    if not request.user.is_authenticated:
        return _error(401, "unauthenticated", "Log in or send 'Authorization: Bearer <token>'.")
    # Session callers are browsers: they need the CSRF token like any other POST.
    csrf = CsrfViewMiddleware(_not_called)
    rejected = csrf.process_view(request, _not_called, (), {})
    if rejected is not None:
        return _error(403, "csrf", "CSRF verification failed; send the X-CSRFToken header.")
    return request.user


@csrf_exempt  # checked in _authenticate for session callers; tokens need none
@require_POST
def generate(request: HttpRequest) -> JsonResponse:
    user = _authenticate(request)
    if isinstance(user, JsonResponse):
        return user
    try:
        parsed = parse_generate_body(read_json_body(request))
    except (BadBody, ApiInputError) as exc:
        return _error(400, "invalid_request", exc.message, field=exc.field)
    request_id = uuid.uuid4().hex
    routed: dict[str, str] = {}
    try:
        if parsed.provider_id is None:
            alias = find_alias(parsed.request.model)
            if alias is None:
                message = f"No active alias is named {parsed.request.model[:100]!r}; give "
                return _error(404, "not_found", message + "provider_id to name a provider.")
            result, target = generate_routed_for_api(
                user=user,
                alias=alias.name,
                targets=planned_targets(alias),
                request=parsed.request,
                request_id=request_id,
            )
            routed = {"alias": alias.name, "provider": target.provider.name}
        else:
            try:
                provider = Provider.objects.get(pk=parsed.provider_id, is_active=True)
            except Provider.DoesNotExist:
                return _error(404, "not_found", "No active provider has that provider_id.")
            result = generate_for_api(
                user=user, provider=provider, request=parsed.request, request_id=request_id
            )
    except AliasUnavailable as exc:
        return _error(503, "configuration", exc.message)
    except InvalidRequest as exc:
        field = parsed.prompt_field if exc.field == "messages" else exc.field
        return _error(400, "invalid_request", exc.message, field=field)
    except BudgetExceeded as exc:
        return _error(402, "over_budget", str(exc))
    if result.error is not None:
        status = STATUS_BY_ERROR_KIND[result.error.kind]
        return JsonResponse({"success": False, "error": result.error.as_dict()}, status=status)
    usage = result.usage
    return JsonResponse(
        {
            "success": True,
            "data": {
                **routed,  # through an alias: its name and the provider that answered
                "text": result.text,
                "model": result.model,
                "finish_reason": result.finish_reason,
                "cached": result.cached,
                "usage": {
                    "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens,
                    "total_tokens": usage.total_tokens,
                    "cached_input_tokens": usage.cached_input_tokens,
                    "estimated": usage.estimated,
                },
            },
        }
    )
