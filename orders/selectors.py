"""Reads of the workshop."""

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from orders.models import Category, MechanicProfile, Order, Part


def mechanic_of(user: User | AnonymousUser) -> MechanicProfile | None:
    if not user.is_authenticated:
        return None
    return MechanicProfile.objects.filter(user=user, is_active=True).first()


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
