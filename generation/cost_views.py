"""The composer's send estimate and a chat's running total (HTMX partials)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from generation.estimates import EstimateForm, estimate_send, running_total
from generation.forms import plain_int
from generation.models import Conversation
from generation.presets import Preset

if TYPE_CHECKING:
    from config.request_types import AuthenticatedHttpRequest


def _get_conversation_for_user(
    request: AuthenticatedHttpRequest, conversation_id: int
) -> Conversation:
    return get_object_or_404(Conversation, pk=conversation_id, owner=request.user)


def _get_preset_for_user(request: AuthenticatedHttpRequest, raw: str) -> Preset | None:
    """The preset a new chat starts from (its thinking flag changes the hold)."""
    if not raw.strip():
        return None
    preset_id = plain_int(raw.strip())
    if preset_id is None:
        raise Http404("No such preset.")
    return get_object_or_404(Preset.objects.visible_to(request.user), pk=preset_id)


def _id_or_404(raw: str) -> int | None:
    if not raw.strip():
        return None
    value = plain_int(raw.strip())
    if value is None:
        raise Http404("No such conversation.")
    return value


@login_required
@require_POST  # the prompt so far can be long: a body, not a query string
def send_estimate(request: AuthenticatedHttpRequest) -> HttpResponse:
    conversation_id = _id_or_404(request.POST.get("conversation", ""))
    conversation = _get_conversation_for_user(request, conversation_id) if conversation_id else None
    preset = _get_preset_for_user(request, request.POST.get("preset", ""))
    form = EstimateForm(request.POST)
    ctx: dict[str, object] = {"estimate": None, "error": ""}
    if not form.is_valid():
        # Shown beside the estimate, not as a failed request: the user is still typing.
        ctx["error"] = next(iter(form.errors.values()))[0]
    elif form.cleaned_data["text"].strip():  # nothing typed yet: nothing to estimate
        data = form.cleaned_data
        ctx["estimate"] = estimate_send(
            user=request.user,
            conversation=conversation,
            text=data["text"],
            provider=data["provider"],
            model=data["model"].strip(),
            temperature=data["temperature"],
            max_tokens=data["max_tokens"],
            system_prompt=data["system_prompt"],
            preset=preset if conversation is None else None,
            alias=data["alias"],
        )
    return render(request, "generation/_send_estimate.html", ctx)


@login_required
@require_GET
def conversation_cost(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The running total of the chat named by ?conversation= (the page's hidden field, so
    a chat created by the first send is found too); blank for a chat not started."""
    conversation_id = _id_or_404(request.GET.get("conversation", ""))
    if conversation_id is None:
        return HttpResponse("")
    conversation = _get_conversation_for_user(request, conversation_id)
    ctx = {"total": running_total(conversation=conversation)}
    return render(request, "generation/_conversation_cost.html", ctx)
