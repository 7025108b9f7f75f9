"""Demo data for the quick start. Idempotent: a second run changes nothing that exists."""

import json
import os
import secrets
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from conclave.services import user_created_record
from events.models import KeeperKey
from events.services import keeper_key_register, keys_bootstrap
from orders.models import Category, Part
from orders.services import mechanic_create

DEMO_STAFF_USERNAME = "staff"
DEMO_KEEPERS = ("keeper-one", "keeper-two", "keeper-three")
DEMO_MECHANIC_USERNAME = "mechanic"
# (English, Hebrew, Russian), icon, parts: ((names), part number, price, common part)
DEMO_CATALOG = (
    (("Brakes", "בלמים", "Тормоза"), "disc", (
        (("Brake pads", "רפידות בלם", "Тормозные колодки"), "BP-2040", "149.90", True),
        (("Brake disc", "דיסק בלם", "Тормозной диск"), "BD-3310", "320.00", False),
    )),
    (("Engine", "מנוע", "Двигатель"), "engine", (
        (("Oil filter", "מסנן שמן", "Масляный фильтр"), "OF-1120", "39.50", True),
        (("Spark plug", "מצת", "Свеча зажигания"), "SP-0450", "24.00", True),
    )),
    (("Suspension", "מתלים", "Подвеска"), "spring", (
        (("Shock absorber", "בולם זעזועים", "Амортизатор"), "SA-7781", "410.00", False),
    )),
)  # fmt: skip


class Command(BaseCommand):
    help = (
        "Load demo data (system keys, a keeper set with key files under var/keepers/, the staff "
        "user and its API token, a mechanic, a catalog). Refused in production."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.ENVIRONMENT == "production":
            raise CommandError("seed_demo is refused with ENVIRONMENT=production")
        for key in keys_bootstrap():
            self.stdout.write(f"Registered {key.kind} key {key.key_id} for {key.agent_id}.")
        credentials: dict[str, Any] = {}
        staff = self.seed_staff()
        if staff:
            credentials["staff"] = staff
        keepers = self.seed_keepers()
        if keepers:
            credentials["keepers"] = keepers
        mechanic = self.seed_mechanic()
        if mechanic:
            credentials["mechanic"] = mechanic
        self.seed_catalog()
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
        user_created_record(user=user, actor="manage.py seed_demo")
        self.stdout.write(
            f"Created staff user '{user.username}' with password {password} "
            f"and API token {token.key}"
        )
        return {"username": user.username, "password": password, "token": token.key}

    def seed_keepers(self) -> list[dict[str, str]]:
        """Demo keepers (enough for the halt-clearing quorum), their private keys in
        var/keepers/ for `manage.py keeper_sign`. A real keeper runs create_keeper instead."""
        folder = settings.VAR_DIR / "keepers"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        created = []
        wanted = DEMO_KEEPERS[: max(settings.HALT_CLEAR_QUORUM, 2)]
        for name in wanted:
            keeper_id = f"KEEPER:{name}"
            if KeeperKey.objects.filter(keeper_id=keeper_id, active_until__isnull=True).exists():
                continue
            private = Ed25519PrivateKey.generate()
            path = folder / f"{name}.pem"
            with transaction.atomic():
                key = keeper_key_register(
                    keeper_id=keeper_id,
                    public_key=private.public_key().public_bytes_raw(),
                    actor="manage.py seed_demo",
                )
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as file:
                    file.write(
                        private.private_bytes(
                            serialization.Encoding.PEM,
                            serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption(),
                        )
                    )
            self.stdout.write(f"Registered keeper {keeper_id} ({key.key_id}); key in {path}")
            created.append({"keeper_id": keeper_id, "key_id": key.key_id, "key_file": str(path)})
        return created

    def seed_mechanic(self) -> dict[str, str] | None:
        if get_user_model().objects.filter(username=DEMO_MECHANIC_USERNAME).exists():
            return None
        password = os.environ.get("DEMO_MECHANIC_PASSWORD") or secrets.token_urlsafe(12)
        profile = mechanic_create(
            username=DEMO_MECHANIC_USERNAME,
            password=password,
            display_name="Demo Mechanic",
            actor="manage.py seed_demo",
        )
        self.stdout.write(
            f"Created mechanic '{DEMO_MECHANIC_USERNAME}' (id {profile.pk}) with password "
            f"{password}"
        )
        return {"username": DEMO_MECHANIC_USERNAME, "password": password}

    @transaction.atomic
    def seed_catalog(self) -> None:
        if Category.objects.exists():
            return
        for order, (names, icon, parts) in enumerate(DEMO_CATALOG):
            category = Category.objects.create(
                name_en=names[0], name_he=names[1], name_ru=names[2], icon=icon, sort_order=order
            )
            for position, (part_names, number, price, common) in enumerate(parts):
                Part.objects.create(
                    category=category,
                    name_en=part_names[0],
                    name_he=part_names[1],
                    name_ru=part_names[2],
                    part_number=number,
                    price=Decimal(price),
                    is_common=common,
                    sort_order=position,
                )
        self.stdout.write(f"Loaded the demo catalog ({len(DEMO_CATALOG)} categories).")

    def save_credentials(self, credentials: dict[str, Any]) -> None:
        path = settings.VAR_DIR / "demo-credentials.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        saved: dict[str, Any] = {}
        if path.exists():
            saved = json.loads(path.read_text(encoding="utf-8"))
        saved.update(credentials)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(saved, file, indent=2)
        self.stdout.write(f"Demo credentials saved to {path}")
