"""The chat pages (HTMX, server-rendered) and the composer's model picker. The SSE stream
lives in stream_views.py."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import aget_object_or_404, get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, push_url, reswap, retarget

from generation import branching, exports, services
from generation.attachments import for_thread
from generation.forms import (
    ComposerForm,
    EditForm,
    RegenerateForm,
    RenameForm,
    RetryForm,
    SavePresetForm,
    SystemPromptForm,
    ThinkingForm,
    plain_int,
)
from generation.models import Conversation, Message
from generation.presets import Preset
from generation.rendering import render_message
from providers.adapters import adapter_class
from providers.adapters.common import well_formed
from providers.engine import alist_models
from providers.models import Provider
from routing.models import Alias

if TYPE_CHECKING:
    from config.request_types import AuthenticatedHttpRequest

logger = logging.getLogger(__name__)


def _get_conversation_for_user(
    request: AuthenticatedHttpRequest, conversation_id: int
) -> Conversation:
    return get_object_or_404(Conversation, pk=conversation_id, owner=request.user)


def _get_message_for_user(
    request: AuthenticatedHttpRequest,
    message_id: int,
    role: Message.Role | None = Message.Role.ASSISTANT,
) -> Message:
    """One of the user's messages (an answer unless `role` says otherwise; None: either)."""
    roles = {"role": role} if role is not None else {}
    return get_object_or_404(
        Message.objects.select_related("conversation", "retried_by", "provider", "alias"),
        pk=message_id,
        conversation__owner=request.user,
        **roles,
    )


def _get_preset_for_user(request: AuthenticatedHttpRequest, preset_id: int) -> Preset:
    """One of the user's own presets or a shared one: another user's is a 404."""
    return get_object_or_404(
        Preset.objects.visible_to(request.user).select_related("provider"), pk=preset_id
    )


def _preset_from(request: AuthenticatedHttpRequest, raw: str) -> Preset | None:
    """The preset a new chat starts from, named by id in the query or the form."""
    if not raw.strip():
        return None
    preset_id = plain_int(raw.strip())
    if preset_id is None:
        raise Http404("No such preset.")
    return _get_preset_for_user(request, preset_id)


def _thinking_limits(conversation: Conversation | None) -> dict[str, int] | None:
    """The thinking budget's limits when the chat's provider takes one (its adapter
    says so): only then does the header offer the thinking control."""
    provider = conversation.provider if conversation is not None else None
    if provider is None:
        return None
    adapter = adapter_class(provider.kind)
    if not adapter.supports_thinking_budget:
        return None
    return {"low": adapter.min_thinking_budget, "high": adapter.max_thinking_budget}


@dataclass(frozen=True)
class ThreadEntry:
    message: Message
    versions: branching.Versions | None


def _thread(conversation: Conversation) -> list[ThreadEntry]:
    """The active branch, each message with its versions, from one query."""
    query = conversation.messages.select_related("retried_by", "provider", "alias")
    messages = list(query.prefetch_related(for_thread()).with_cost())
    branch = branching.active_branch(conversation, messages)
    versions = branching.versions_on(branch, messages)
    return [ThreadEntry(message, versions.get(message.pk)) for message in branch]


def _thread_response(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    """After the active branch changed: the thread for htmx to swap in, or the chat page."""
    if not request.htmx:
        return redirect(reverse("generation:conversation", args=[conversation_id]))
    conversation = _get_conversation_for_user(request, conversation_id)
    ctx = {"conversation": conversation, "thread": _thread(conversation)}
    return render(request, "generation/_thread.html", ctx)


def _chat_page(
    request: AuthenticatedHttpRequest,
    conversation: Conversation | None,
    preset: Preset | None = None,
) -> HttpResponse:
    providers = list(Provider.objects.filter(is_active=True))
    provider = conversation.provider if conversation and conversation.provider else None
    if provider is None or not provider.is_active:
        provider = providers[0] if providers else None
    model = conversation.model if conversation and conversation.provider == provider else ""
    preset_error = ""
    if preset is not None:
        try:
            services.check_preset_usable(preset=preset)
        except services.SendError as exc:
            preset_error, preset = exc.message, None
    if preset is not None:  # a new chat starting from it: the composer holds its settings
        provider, model = preset.provider, preset.model
    if not model and provider is not None:
        model = provider.effective_default_model
    aliases = list(Alias.objects.filter(is_active=True))
    initial = {"provider": provider, "model": model}
    ctx: dict[str, Any] = {
        "preset": preset if preset is not None else getattr(conversation, "preset", None),
        "preset_error": preset_error,
        "presets": list(Preset.objects.visible_to(request.user)) if conversation is None else [],
        "draft": preset.system_prompt if preset is not None else "",
        "conversation": conversation,
        "thinking_limits": _thinking_limits(conversation),
        "conversations": request.user.conversations.all()[:200],
        "thread": _thread(conversation) if conversation else [],
        "form": ComposerForm(initial=initial),
        "providers": providers,
        "selected_provider": provider,
        "selected_model": initial["model"],
        "aliases": aliases,
        "selected_alias": _alias_for(conversation, preset, aliases),
        # The composer checks them before uploading (the server checks again).
        "attachment_limits": settings.SWITCHBOARD,
    }
    return render(request, "generation/chat.html", ctx)


def _alias_for(
    conversation: Conversation | None, preset: Preset | None, aliases: list[Alias]
) -> Alias | None:
    """The alias the composer preselects: the chat's last one while it is active; for a
    new chat, the one marked default for new chats (a preset names its own model)."""
    if conversation is not None:
        wanted = conversation.alias_id
        return next((alias for alias in aliases if alias.pk == wanted), None)
    if preset is not None:
        return None
    return next((alias for alias in aliases if alias.is_default_for_chats), None)


@login_required
@require_GET
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _chat_page(request, None, _preset_from(request, request.GET.get("preset", "")))


@login_required
@require_GET
def conversation_detail(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    return _chat_page(request, _get_conversation_for_user(request, conversation_id))


def _first_error(form: forms.Form) -> str:
    """The form's first error in words, shown next to the field the user typed in."""
    return str(next(iter(form.errors.values()))[0])


def _composer_error(message: str) -> HttpResponse:
    response = HttpResponse(render_to_string("generation/_composer_error.html", {"error": message}))
    return reswap(retarget(response, "#composer-error"), "innerHTML")


@login_required
@require_POST
def send(request: AuthenticatedHttpRequest) -> HttpResponse:
    conversation = None
    if raw_id := request.POST.get("conversation", "").strip():
        conversation_id = plain_int(raw_id)
        if conversation_id is None:
            return HttpResponseBadRequest()
        conversation = _get_conversation_for_user(request, conversation_id)
    preset = _preset_from(request, request.POST.get("preset", "")) if conversation is None else None
    form = ComposerForm(request.POST, request.FILES)
    if not form.is_valid():
        return _composer_error(_first_error(form))
    data = form.cleaned_data
    try:
        sent = services.send_message(
            user=request.user,
            conversation=conversation,
            text=data["text"],
            provider=data["provider"],
            model=data["model"].strip(),
            alias=data["alias"],
            temperature=data["temperature"],
            max_tokens=data["max_tokens"],
            system_prompt=data["system_prompt"],
            preset=preset,
            attachments=data["attachments"],
        )
    except services.SendError as exc:
        return _composer_error(exc.message)
    url = reverse("generation:conversation", args=[sent.conversation.pk])
    if not request.htmx:
        return redirect(url)
    ctx = {
        "sent": sent,
        "conversation": sent.conversation,
        "thinking_limits": _thinking_limits(sent.conversation),
        # The page's list shows "No chats yet" only when this is the user's first chat.
        "first_conversation": sent.created_conversation
        and not request.user.conversations.exclude(pk=sent.conversation.pk).exists(),
    }
    response = render(request, "generation/_sent.html", ctx)
    if sent.created_conversation:
        push_url(response, url)
    return response


@login_required
@require_POST
def cancel(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    message = _get_message_for_user(request, message_id)
    services.cancel_message(message=message)
    # The stream's final event replaces the bubble; nothing to swap here.
    return HttpResponse(status=204)


@login_required
@require_POST
def retry(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    message = _get_message_for_user(request, message_id)
    form = RetryForm(request.POST)
    if not form.is_valid():
        return _composer_error(_first_error(form))
    try:
        services.retry_message(
            message=message,
            provider=form.cleaned_data["provider"],
            model=form.cleaned_data["model"].strip(),
            alias=form.cleaned_data["alias"],
        )
    except services.SendError as exc:
        return _composer_error(exc.message)
    return _thread_response(request, message.conversation_id)


@login_required
@require_GET
def message_bubble(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    """One message as the thread shows it (an edit or a picker cancelled puts it back)."""
    message = _get_message_for_user(request, message_id, role=None)
    return HttpResponse(render_message(message, request))


def _edit_form(
    request: AuthenticatedHttpRequest, message: Message, draft: str, error: str = ""
) -> HttpResponse:
    ctx = {"message": message, "draft": draft, "error": error}
    if not error or not request.htmx:
        return render(request, "generation/_edit_form.html", ctx, status=400 if error else 200)
    # The form stays in place, with the text as typed and the reason.
    response = render(request, "generation/_edit_form.html", ctx)
    return reswap(retarget(response, f"#message-{message.pk}"), "outerHTML")


@login_required
@require_http_methods(["GET", "POST"])
def edit(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    """GET: a user message's inline edit form. POST: send the edit as a new version of the
    message, with an answer of its own; the thread then shows that branch."""
    question = _get_message_for_user(request, message_id, role=Message.Role.USER)
    if request.method == "GET":
        return _edit_form(request, question, question.content)
    form = EditForm(request.POST)
    draft = well_formed(request.POST.get("text", ""))
    if not form.is_valid():
        return _edit_form(request, question, draft, _first_error(form))
    data = form.cleaned_data
    conversation = question.conversation
    provider, model, alias = data["provider"], data["model"].strip(), data["alias"]
    if provider is None and alias is None:  # a plain post: the chat's last choice
        provider, model, alias = conversation.provider, conversation.model, conversation.alias
    if provider is None and alias is None:
        return _edit_form(request, question, draft, "Pick a provider in the composer first.")
    try:
        services.edit_message(
            question=question,
            text=data["text"],
            provider=provider,
            model=model,
            alias=alias,
            temperature=data["temperature"],
            max_tokens=data["max_tokens"],
        )
    except services.SendError as exc:
        return _edit_form(request, question, draft, exc.message)
    return _thread_response(request, conversation.pk)


@login_required
@require_http_methods(["GET", "POST"])
def regenerate(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    """GET: the picker of another provider and model. POST: a new version of the answer
    (by its own model, or the one picked); the thread then shows it."""
    answer = _get_message_for_user(request, message_id)
    if request.method == "GET":
        providers = list(Provider.objects.filter(is_active=True))
        provider = answer.provider if answer.provider in providers else None
        model = answer.model if provider is not None else ""
        if provider is None and providers:
            provider = providers[0]
            model = provider.effective_default_model
        ctx = {
            "message": answer,
            "providers": providers,
            "selected_provider": provider,
            "selected_model": model,
        }
        return render(request, "generation/_regenerate_form.html", ctx)
    form = RegenerateForm(request.POST)
    if not form.is_valid():
        return _composer_error(_first_error(form))
    try:
        services.regenerate_answer(
            answer=answer,
            provider=form.cleaned_data["provider"],
            model=form.cleaned_data["model"].strip(),
        )
    except services.SendError as exc:
        return _composer_error(exc.message)
    return _thread_response(request, answer.conversation_id)


@login_required
@require_POST
def show_version(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    """The versions switcher: show the branch through this version. No provider is called."""
    message = _get_message_for_user(request, message_id, role=None)
    branching.show_version(message=message)
    return _thread_response(request, message.conversation_id)


@login_required
def rename(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    conversation = _get_conversation_for_user(request, conversation_id)
    if request.method == "POST":
        form = RenameForm(request.POST)
        if form.is_valid():
            title = form.cleaned_data["title"]
            services.rename_conversation(conversation=conversation, title=title)
        if not request.htmx:
            # The form submitted before htmx bound it (Enter at once), or without script.
            return redirect(reverse("generation:conversation", args=[conversation.pk]))
        template = "generation/_conversation_item.html"
    elif request.method == "GET":
        template = "generation/_rename_form.html"
    else:
        return HttpResponse(status=405)
    ctx = {"item": conversation, "conversation": conversation}
    return render(request, template, ctx)


@login_required
@require_POST
def system_prompt(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    """Save the chat's system prompt from the header; the header part comes back in place
    with a confirmation, or with the error and the text as typed (nothing is lost)."""
    conversation = _get_conversation_for_user(request, conversation_id)
    form = SystemPromptForm(request.POST)
    ctx: dict[str, Any] = {"conversation": conversation, "open": True}
    if form.is_valid():
        services.set_system_prompt(
            conversation=conversation, system_prompt=form.cleaned_data["system_prompt"]
        )
        ctx["saved"] = True
        ctx["draft"] = conversation.system_prompt
    else:
        ctx["error"] = _first_error(form)
        ctx["draft"] = well_formed(request.POST.get("system_prompt", ""))
    return render(request, "generation/_system_prompt.html", ctx)


@login_required
@require_POST
def thinking(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    """Turn the chat's extended thinking on or off and set its budget, from the header;
    the header part comes back in place, with the error and the values as typed."""
    conversation = _get_conversation_for_user(request, conversation_id)
    limits = _thinking_limits(conversation)
    if limits is None:
        return HttpResponseBadRequest("This chat's provider takes no thinking budget.")
    form = ThinkingForm(request.POST, **limits)
    ctx: dict[str, Any] = {"conversation": conversation, "thinking_limits": limits, "open": True}
    if form.is_valid():
        data = form.cleaned_data
        services.set_thinking(
            conversation=conversation,
            enabled=data["thinking"],
            budget=data["budget"] if data["budget"] is not None else conversation.thinking_budget,
        )
        ctx["saved"] = True
    else:
        ctx["error"] = _first_error(form)
        ctx["draft_enabled"] = bool(request.POST.get("thinking"))
        ctx["draft_budget"] = well_formed(request.POST.get("budget", ""))[:20]
    return render(request, "generation/_thinking.html", ctx)


@login_required
@require_POST
def save_preset(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    """Save the chat's settings as a personal preset, from the header."""
    conversation = _get_conversation_for_user(request, conversation_id)
    form = SavePresetForm(request.POST)
    ctx: dict[str, Any] = {"conversation": conversation, "open": True}
    if form.is_valid():
        data = form.cleaned_data
        try:
            ctx["saved_preset"] = services.save_preset(
                owner=request.user,
                conversation=conversation,
                name=data["name"],
                temperature=data["temperature"],
                max_tokens=data["max_tokens"],
                thinking=data["thinking"],
            )
        except services.SendError as exc:
            ctx["error"] = exc.message
    else:
        ctx["error"] = _first_error(form)
    if "error" in ctx:
        ctx["draft_name"] = well_formed(request.POST.get("name", ""))
    return render(request, "generation/_save_preset.html", ctx)


@login_required
@require_POST
def delete_preset(request: AuthenticatedHttpRequest, preset_id: int) -> HttpResponse:
    # Only the owner's own: a shared preset is managed by staff in the admin.
    preset = get_object_or_404(Preset, pk=preset_id, owner=request.user)
    preset.delete()
    if not request.htmx:
        return redirect("generation:index")
    return HttpResponse("")  # the list item swaps itself out


@login_required
@require_POST
def delete(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    conversation = _get_conversation_for_user(request, conversation_id)
    services.delete_conversation(conversation=conversation)
    index_url = reverse("generation:index")
    own_url = reverse("generation:conversation", args=[conversation_id])
    if not request.htmx:
        return redirect(index_url)
    # The list item swaps itself out; if we are looking at this chat, leave it too.
    if (request.htmx.current_url_abs_path or "").startswith(own_url):
        return HttpResponseClientRedirect(index_url)
    return HttpResponse("")


def _download(body: str, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


@login_required
@require_GET
def export_markdown(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    conversation = _get_conversation_for_user(request, conversation_id)
    body = exports.export_markdown(conversation, exports.export_messages(conversation))
    filename = exports.export_filename(conversation, "md")
    return _download(body, "text/markdown; charset=utf-8", filename)


@login_required
@require_GET
def export_json(request: AuthenticatedHttpRequest, conversation_id: int) -> HttpResponse:
    conversation = _get_conversation_for_user(request, conversation_id)
    body = exports.export_json(conversation, exports.export_messages(conversation))
    return _download(body, "application/json", exports.export_filename(conversation, "json"))


async def _models_for(provider: Provider) -> list[str]:
    try:
        models = list(await alist_models(provider))  # cached by the engine
    except Exception as exc:  # the picker still offers the default model
        kind = type(exc).__name__
        logger.info("Listing models of provider %s failed: %s", provider.pk, kind)
        models = []
    default = provider.effective_default_model
    if default and default not in models:
        models = [default, *models]
    return models


@login_required
@require_GET
async def model_options(request: AuthenticatedHttpRequest) -> HttpResponse:
    try:
        provider_id = uuid.UUID(request.GET.get("provider", ""))
    except ValueError:
        return HttpResponse(status=400)
    provider = await aget_object_or_404(Provider, pk=provider_id, is_active=True)
    models = await _models_for(provider)
    selected = request.GET.get("model") or provider.effective_default_model
    ctx = {"models": models, "selected": selected}
    return await sync_to_async(render)(request, "generation/_model_options.html", ctx)
