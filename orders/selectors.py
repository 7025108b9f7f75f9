"""Reads of the workshop."""

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from orders.models import Category, MechanicProfile, Order, Part


def mechanic_of(user: User | AnonymousUser) -> MechanicProfile | None:
    """The user's active mechanic profile, looked up once per user object: a request's
    permission check and its view share it."""
    if not user.is_authenticated:
        return None
    if not hasattr(user, "_active_mechanic"):
        profile = MechanicProfile.objects.filter(user=user, is_active=True).first()
        setattr(user, "_active_mechanic", profile)  # noqa: B010 - a memo on this user object
    mechanic: MechanicProfile | None = getattr(user, "_active_mechanic")  # noqa: B009
    return mechanic


def orders_visible_to(user: User | AnonymousUser) -> QuerySet[Order]:
    """Staff see every order; a mechanic sees their own; anyone else none."""
    orders = Order.objects.select_related("mechanic").order_by("-id")
    if user.is_authenticated and user.is_staff:
        return orders
    mechanic = mechanic_of(user)
    return orders.filter(mechanic=mechanic) if mechanic else orders.none()


def categories() -> QuerySet[Category]:
    return Category.objects.order_by("sort_order", "id")


def parts(*, category_id: int | None = None) -> QuerySet[Part]:
    found = Part.objects.order_by("sort_order", "id")
    return found.filter(category_id=category_id) if category_id is not None else found
