"""Demo data for the quick start. Idempotent: a second run changes nothing that exists."""

import json
import os
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from events.services import keys_bootstrap

DEMO_STAFF_USERNAME = "staff"


class Command(BaseCommand):
    help = "Load demo data (system keys, staff user and its API token). Refused in production."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.ENVIRONMENT == "production":
            raise CommandError("seed_demo is refused with ENVIRONMENT=production")
        for key in keys_bootstrap():
            self.stdout.write(f"Registered {key.kind} key {key.key_id} for {key.agent_id}.")
        credentials = self.seed_staff()
        if credentials:
            self.save_credentials(credentials)
        self.stdout.write(self.style.SUCCESS("Demo data is in place."))

    @transaction.atomic
    def seed_staff(self) -> dict[str, str] | None:
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=DEMO_STAFF_USERNAME,
            defaults={"is_staff": True, "is_superuser": True, "email": ""},
        )
        token, _ = Token.objects.get_or_create(user=user)
        if not created:
            self.stdout.write(f"Staff user '{user.username}' already exists; left unchanged.")
            return None
        password = os.environ.get("DEMO_STAFF_PASSWORD") or secrets.token_urlsafe(12)
        user.set_password(password)
        user.save(update_fields=["password"])
        self.stdout.write(
            f"Created staff user '{user.username}' with password {password} "
            f"and API token {token.key}"
        )
        return {"username": user.username, "password": password, "token": token.key}

    def save_credentials(self, credentials: dict[str, str]) -> None:
        path = settings.VAR_DIR / "demo-credentials.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump({"staff": credentials}, file, indent=2)
        self.stdout.write(f"Demo credentials saved to {path}")
