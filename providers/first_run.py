"""What `manage.py bootstrap` does on a fresh machine for the embedded default."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from providers.crypto import generate_key_entry, get_keyring


def write_private_file(path: Path, content: str) -> None:
    """Create a file readable by its owner only; never overwrite an existing one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content + "\n")


def ensure_secret_key() -> Path | None:
    """Create DATA_DIR/secret_key when no SECRET_KEY is configured. Returns the new file."""
    if os.environ.get("SECRET_KEY"):
        return None
    path = Path(settings.DATA_DIR) / "secret_key"
    if not path.exists():
        write_private_file(path, secrets.token_urlsafe(50))
    # This process loaded settings before the file existed.
    settings.SECRET_KEY = path.read_text().strip()
    return path


def ensure_encryption_key_file() -> Path | None:
    """Create the keyring file when no ENCRYPTION_KEYS are configured. Returns it if new."""
    if settings.ENCRYPTION_KEYS:
        return None
    path = Path(settings.ENCRYPTION_KEY_FILE)
    if path.exists():
        return None
    write_private_file(
        path,
        "# Switchboard encryption keyring: the first key encrypts, all decrypt.\n"
        "# Back this file up: without it stored API keys cannot be read.\n" + generate_key_entry(),
    )
    get_keyring.cache_clear()
    return path


def ensure_admin() -> tuple[str, str | None] | None:
    """Create the first superuser if there is none.

    Returns (username, generated password or None when it came from the environment),
    or None when an admin already exists.
    """
    user_model = get_user_model()
    if user_model.objects.filter(is_superuser=True).exists():
        return None
    username = os.environ.get("ADMIN_USERNAME", "admin")
    password = os.environ.get("ADMIN_PASSWORD")
    generated = None
    if not password:
        password = generated = secrets.token_urlsafe(12)
    user_model.objects.create_superuser(
        username=username, email=os.environ.get("ADMIN_EMAIL", ""), password=password
    )
    return username, generated


# Environment variables whose keys become providers on first run, encrypted at once.
ENV_PROVIDERS = {
    "OPENAI_API_KEY": ("OpenAI", "openai"),
    "ANTHROPIC_API_KEY": ("Anthropic", "anthropic"),
    "DEEPSEEK_API_KEY": ("DeepSeek", "deepseek"),
}
DEMO_PROVIDER_NAME = "Demo (local)"


def demo_upstream_url() -> str:
    return f"http://127.0.0.1:{settings.DEMO_UPSTREAM_PORT}"


def import_env_providers() -> list[str]:
    """On first run (no provider yet), create one for each *_API_KEY in the environment."""
    from providers.models import Provider

    created: list[str] = []
    if Provider.objects.exists():
        return created
    for variable, (name, kind) in ENV_PROVIDERS.items():
        key = os.environ.get(variable, "").strip()
        if not key:
            continue
        provider = Provider(name=name, kind=kind)
        provider.set_api_key(key)
        provider.save()
        created.append(name)
    return created


def ensure_demo_provider() -> bool:
    """With no provider at all, add one backed by the local fake upstream. True if created."""
    from providers.models import Provider

    if not settings.DEMO_PROVIDER or Provider.objects.exists():
        return False
    provider = Provider(
        name=DEMO_PROVIDER_NAME,
        kind="openai_compatible",
        base_url=f"{demo_upstream_url()}/v1",
        default_model="demo-model",
    )
    provider.set_api_key("demo-key-not-a-secret")
    provider.save()
    _price_demo_model_at_zero()
    return True


def _price_demo_model_at_zero() -> None:
    # The demo's answers cost nothing; an unpriced model would read "cost unknown".
    from django.utils import timezone

    from usage.models import ModelPrice

    ModelPrice.objects.get_or_create(
        provider_kind="openai_compatible",
        model="demo-model",
        defaults={
            "input_per_mtok": 0,
            "output_per_mtok": 0,
            "valid_from": timezone.now(),
            "note": "The local demo provider: free.",
        },
    )


def demo_provider_in_use() -> bool:
    from providers.models import Provider

    return Provider.objects.filter(
        is_active=True, base_url__startswith=demo_upstream_url()
    ).exists()
