"""What the workshop's services share: who acted, and the order a caller may change."""

from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy

from conclave.exceptions import Conflict, NotFound
from events.services import actor_of as actor_of  # the services' import of it
from orders.models import MechanicProfile, Order, OrderStatus
from orders.selectors import handles_orders

# A status as a sentence says it ("Order 5 is ready"): the labels are the lists' headings.
STATUS_IN_A_SENTENCE: dict[str, Any] = {
    OrderStatus.NEW: pgettext_lazy("order status in a sentence", "new"),
    OrderStatus.IN_PROGRESS: pgettext_lazy("order status in a sentence", "in progress"),
    OrderStatus.READY: pgettext_lazy("order status in a sentence", "ready"),
    OrderStatus.COMPLETED: pgettext_lazy("order status in a sentence", "completed"),
    OrderStatus.CANCELLED: pgettext_lazy("order status in a sentence", "cancelled"),
}


def own_order(order_id: int, mechanic: MechanicProfile, *, lock: bool = False) -> Order:
    """The mechanic's own order (locked if `lock`, in the caller's transaction); another
    mechanic's order does not exist for them (404)."""
    orders = Order.objects.select_for_update() if lock else Order.objects.all()
    order = orders.filter(pk=order_id, mechanic=mechanic).first()
    if order is None:
        raise NotFound(f"No order {order_id} of yours.")
    return order


def open_order_for_update(order_id: int, user: User) -> Order:
    """The order `user` may change (staff: any; a mechanic: their own), locked, and still being
    worked on: a completed or cancelled order's parts, labour and photos are final (409)."""
    # The order's row only: the mechanic's rows the filter joins stay unlocked (their other
    # orders' writes, a sign-in's last_login, an assignment to them do not wait on this).
    orders = Order.objects.select_for_update(of=("self",))
    if not handles_orders(user, change=True):
        orders = orders.filter(mechanic__user=user, mechanic__is_active=True)
    order = orders.filter(pk=order_id).first()
    if order is None:
        raise NotFound(f"No order {order_id}.")
    if not order.is_open:  # in the caller's language: a mechanic's page shows a 409's words
        raise Conflict(
            gettext("Order %(order)d is %(current)s; it can no longer be changed.")
            % {"order": order.pk, "current": STATUS_IN_A_SENTENCE[order.status]},
            status=order.status,
        )
    return order


def contents_changed(order: Order) -> None:
    """The order's parts, labour or photos changed: its `updated_at` moves, as for a status
    or an assignment."""
    order.updated_at = timezone.now()
    order.save(update_fields=["updated_at"])
