"""What the workshop's API views share: the mechanic permission, pagination, the order's JSON."""

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import User
from drf_spectacular.utils import (
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import NotAuthenticated
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from conclave.exceptions import NotFound
from conclave.serializers import StrictInputSerializer
from orders.models import MechanicProfile, Order, OrderStatus, PartOrigin
from orders.selectors import handles_orders, mechanic_of, orders_visible_to


class AnonymousOrderThrottle(AnonRateThrottle):
    """Anonymous order creation, per client address (the runbook's curl has no token)."""

    scope = "orders_anon"


class IsMechanic(BasePermission):
    message = "This needs a mechanic's token."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return mechanic_of(request.user) is not None


class HandlesOrders(BasePermission):
    """The workshop's staff (orders.selectors.handles_orders): to read, the orders' view
    permission; to change, their change permission."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return handles_orders(request.user, change=request.method not in SAFE_METHODS)


def no_parameters_check(request: Request) -> None:
    """A read that takes no parameters refuses any, as the lists refuse those they do not
    take: `?mechanic_id=` on the workshop's totals would answer the whole workshop's as if
    filtered (400, "Unknown field.")."""
    StrictInputSerializer(data=request.query_params).is_valid(raise_exception=True)


class OrderPagination(PageNumberPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


class PagedQuery(StrictInputSerializer):
    """A paginated list's query string: its filters (a subclass's fields) and the page."""

    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(
        required=False, min_value=1, max_value=OrderPagination.max_page_size
    )


def signed_in(request: Request) -> User:
    """The request's user; the view's permission class has already required one."""
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user


def mechanic_from(request: Request) -> MechanicProfile:
    mechanic = mechanic_of(request.user)
    if mechanic is None:
        raise NotAuthenticated()
    return mechanic


def order_json(order: Order, flags: Mapping[str, bool]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": order.pk,
        "mechanic_name": order.mechanic_name,
        "vin": order.vin,
        "part_type": order.part_type,
        "category": order.category,
        "original_or_analog": order.original_or_analog,
        "status": order.status,
        "mechanic_id": order.mechanic_id,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }
    if flags["ENABLE_CAR_NUMBER"]:
        data["car_number"] = order.car_number or None
    return data


@extend_schema_serializer(component_name="Order")
class OrderOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    mechanic_name = serializers.CharField()
    vin = serializers.CharField()
    car_number = serializers.CharField(
        required=False, allow_null=True, help_text="Only while ENABLE_CAR_NUMBER is on."
    )
    part_type = serializers.CharField()
    category = serializers.CharField()
    original_or_analog = serializers.ChoiceField(choices=PartOrigin.choices)
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    mechanic_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField(
        help_text="The order's last change: its status, mechanic, parts, labour or photos."
    )


def visible_order(request: Request, order_id: int) -> Order:
    """The order if the caller may see it (staff: any; a mechanic: their own), else 404."""
    order = orders_visible_to(request.user).filter(pk=order_id).first()
    if order is None:
        raise NotFound(f"No order {order_id}.")
    return order
