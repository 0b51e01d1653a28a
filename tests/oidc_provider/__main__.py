"""Start the test identity provider: `python -m tests.oidc_provider` (environment: see settings)."""

from __future__ import annotations

import os


def main() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.oidc_provider.settings"
    import django
    import uvicorn
    from django.core.asgi import get_asgi_application
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    uvicorn.run(
        get_asgi_application(),
        host="127.0.0.1",
        port=int(os.environ["PROVIDER_PORT"]),
        lifespan="off",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
