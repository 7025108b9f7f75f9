"""Who calls the API: one user per role, each with a bearer token, and a small workshop for
them to act on (an order each for two mechanics, a category with a part)."""

from dataclasses import dataclass, field

from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

from conclave.roles import FLAG_MANAGERS, KEEPERS, SECURITY_ADMINS, STAFF
from orders.models import Category, Order, Part
from orders.services import category_create, mechanic_create, order_create, part_create
from tests.factories import UserFactory
from tests.workshop import MECHANIC_PASSWORD, OTHER_MECHANIC_PASSWORD, RUNBOOK_ORDER

ANONYMOUS = "anonymous"
MECHANIC_A = "mechanic_a"
MECHANIC_B = "mechanic_b"
STAFF_MEMBER = "staff"
FLAG_MANAGER = "flag_manager"
KEEPER = "keeper"
SECURITY_ADMIN = "security_admin"
PERSONAS = (ANONYMOUS, MECHANIC_A, MECHANIC_B, STAFF_MEMBER, FLAG_MANAGER, KEEPER, SECURITY_ADMIN)

_GROUPS = {
    STAFF_MEMBER: STAFF,
    FLAG_MANAGER: FLAG_MANAGERS,
    KEEPER: KEEPERS,
    SECURITY_ADMIN: SECURITY_ADMINS,
}


@dataclass
class Workshop:
    tokens: dict[str, str | None] = field(default_factory=dict)
    order_a: Order | None = None  # mechanic A's
    order_b: Order | None = None  # mechanic B's
    category: Category | None = None
    part: Part | None = None

    def headers(self, persona: str) -> dict[str, str]:
        token = self.tokens[persona]
        return {"Authorization": f"Bearer {token}"} if token else {}


def _token(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def build_workshop() -> Workshop:
    """Needs the system keys (the `system_keys` fixture): every write here is an event."""
    workshop = Workshop(tokens={ANONYMOUS: None})
    a = mechanic_create(username="mika", password=MECHANIC_PASSWORD)
    b = mechanic_create(username="nora", password=OTHER_MECHANIC_PASSWORD)
    workshop.tokens[MECHANIC_A] = _token(a.user)
    workshop.tokens[MECHANIC_B] = _token(b.user)
    for persona, group in _GROUPS.items():
        user = UserFactory(username=persona.replace("_", "-"), is_staff=True)
        user.groups.set(Group.objects.filter(name=group))
        workshop.tokens[persona] = _token(user)
    workshop.order_a = order_create(**RUNBOOK_ORDER, created_by=a.user)
    workshop.order_b = order_create(**RUNBOOK_ORDER, created_by=b.user)
    staff = Token.objects.get(key=workshop.tokens[STAFF_MEMBER]).user
    workshop.category = category_create(
        actor=staff, name_en="Brakes", name_he="בלמים", name_ru="Тормоза"
    )
    workshop.part = part_create(
        actor=staff,
        category_id=workshop.category.pk,
        name_en="Pads",
        name_he="רפידות",
        name_ru="Колодки",
        price="10.00",
    )
    return workshop
