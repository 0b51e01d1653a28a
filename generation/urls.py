from __future__ import annotations

from django.urls import path

from generation import attachment_views, cost_views, search_views, stream_views, views

app_name = "generation"
urlpatterns = [
    path("", views.index, name="index"),
    path("c/<int:conversation_id>/", views.conversation_detail, name="conversation"),
    path("c/<int:conversation_id>/rename/", views.rename, name="rename"),
    path("c/<int:conversation_id>/system-prompt/", views.system_prompt, name="system_prompt"),
    path("c/<int:conversation_id>/thinking/", views.thinking, name="thinking"),
    path("c/<int:conversation_id>/save-preset/", views.save_preset, name="save_preset"),
    path("presets/<int:preset_id>/delete/", views.delete_preset, name="delete_preset"),
    path("c/<int:conversation_id>/delete/", views.delete, name="delete"),
    path("c/<int:conversation_id>/export.md", views.export_markdown, name="export_markdown"),
    path("c/<int:conversation_id>/export.json", views.export_json, name="export_json"),
    path("send/", views.send, name="send"),
    path("m/<int:message_id>/stream/", stream_views.stream, name="stream"),
    path("m/<int:message_id>/cancel/", views.cancel, name="cancel"),
    path("m/<int:message_id>/retry/", views.retry, name="retry"),
    path("m/<int:message_id>/", views.message_bubble, name="message"),
    path("m/<int:message_id>/edit/", views.edit, name="edit"),
    path("m/<int:message_id>/regenerate/", views.regenerate, name="regenerate"),
    path("m/<int:message_id>/show/", views.show_version, name="show_version"),
    path("models/", views.model_options, name="model_options"),
    path("attachments/<int:attachment_id>", attachment_views.attachment, name="attachment"),
    path(
        "attachments/<int:attachment_id>/thumb",
        attachment_views.thumbnail,
        name="attachment_thumbnail",
    ),
    path("search/", search_views.search, name="search"),
    path("estimate/", cost_views.send_estimate, name="send_estimate"),
    path("cost/", cost_views.conversation_cost, name="conversation_cost"),
]
