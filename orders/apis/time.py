"""Time tracking: the timer, manual entries, an order's time and the mechanic's history."""

from typing import Any

from drf_spectacular.utils import (
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conclave.idempotency import idempotent
from conclave.serializers import StrictInputSerializer
from orders.apis.common import (
    IsMechanic,
    mechanic_from,
    no_parameters_check,
    visible_order,
)
from orders.models import TimeEntry
from orders.selectors import PERIODS, time_history, time_period
from orders.services import (
    time_entry_add,
    timer_start,
    timer_stop,
)


@extend_schema_serializer(component_name="TimeEntry")
class TimeEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    order_id = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    seconds = serializers.IntegerField()
    manual = serializers.BooleanField()
    notes = serializers.CharField()


class TimerStartApi(APIView):
    permission_classes = (IsMechanic,)

    @extend_schema(
        operation_id="timer_start",
        request=None,
        responses={201: TimeEntrySerializer},
        tags=["time"],
        description="409 while another timer of the mechanic runs, or when the order is "
        "completed or cancelled (completing or cancelling an order stops the timers running "
        "on it; deactivating a mechanic stops theirs).",
    )
    @idempotent
    def post(self, request: Request, order_id: int) -> Response:
        entry = timer_start(order_id=order_id, mechanic=mechanic_from(request))
        return Response(TimeEntrySerializer(entry).data, status=201)


class TimerStopApi(APIView):
    permission_classes = (IsMechanic,)

    @extend_schema(
        operation_id="timer_stop", request=None, responses={200: TimeEntrySerializer}, tags=["time"]
    )
    @idempotent
    def post(self, request: Request) -> Response:
        return Response(TimeEntrySerializer(timer_stop(mechanic=mechanic_from(request))).data)


class TimerActiveApi(APIView):
    permission_classes = (IsMechanic,)

    @extend_schema(
        operation_id="timer_active",
        responses={
            200: inline_serializer("ActiveTimer", {"entry": TimeEntrySerializer(allow_null=True)})
        },
        tags=["time"],
        description='`{"entry": null}` when no timer of the mechanic runs.',
    )
    def get(self, request: Request) -> Response:
        no_parameters_check(request)
        entry = TimeEntry.objects.filter(
            mechanic=mechanic_from(request), ended_at__isnull=True
        ).first()
        return Response({"entry": TimeEntrySerializer(entry).data if entry else None})


class OrderTimeApi(APIView):
    """An order's time entries and total (staff, or the order's mechanic), and the mechanic's
    manual entries."""

    @extend_schema_serializer(component_name="TimeEntryInput")
    class InputSerializer(StrictInputSerializer):
        started_at = serializers.DateTimeField()
        ended_at = serializers.DateTimeField()
        notes = serializers.CharField(max_length=500, required=False, allow_blank=True)

    def get_permissions(self) -> list[BasePermission]:
        return [IsMechanic()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(
        operation_id="order_time",
        responses={
            200: inline_serializer(
                "OrderTime",
                {
                    "entries": TimeEntrySerializer(many=True),
                    "total_seconds": serializers.IntegerField(),
                },
            )
        },
        tags=["time"],
    )
    def get(self, request: Request, order_id: int) -> Response:
        no_parameters_check(request)
        order = visible_order(request, order_id)
        entries = list(order.time_entries.order_by("started_at", "id"))
        return Response(
            {
                "entries": TimeEntrySerializer(entries, many=True).data,
                "total_seconds": sum(entry.seconds for entry in entries),
            }
        )

    @extend_schema(
        operation_id="time_entry_add",
        description="A manual entry: ends after it starts, not in the future, at most 24 hours. "
        "409 when it overlaps the mechanic's own time on any order (their running timer "
        "included), naming `overlapping_entry_id` and `overlapping_order_id`.",
        request=InputSerializer,
        responses={201: TimeEntrySerializer},
        tags=["time"],
    )
    @idempotent
    def post(self, request: Request, order_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entry = time_entry_add(
            order_id=order_id, mechanic=mechanic_from(request), **serializer.validated_data
        )
        return Response(TimeEntrySerializer(entry).data, status=201)


class TimeHistoryApi(APIView):
    """`GET /api/mechanic/time?period=today|yesterday|week|month|custom&from=&to=`: the
    mechanic's entries grouped by day (newest first) with each day's total and the period's."""

    permission_classes = (IsMechanic,)

    class FilterSerializer(StrictInputSerializer):
        period = serializers.ChoiceField(choices=PERIODS, default="today")
        # `from` is a Python keyword: declared below under its query-string name.
        to = serializers.DateField(required=False)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            """Days given with another period would be passed over: the answer would not be
            about the days asked for."""
            if attrs["period"] != "custom":
                given = [name for name in ("from", "to") if name in attrs]
                if given:
                    raise serializers.ValidationError(
                        {name: ["Only with period=custom."] for name in given}
                    )
            return attrs

    FilterSerializer._declared_fields["from"] = serializers.DateField(required=False)

    @extend_schema(
        operation_id="time_history",
        parameters=[FilterSerializer],
        responses={
            200: inline_serializer(
                "TimeHistory",
                {
                    "period": serializers.CharField(),
                    "from": serializers.DateField(),
                    "to": serializers.DateField(),
                    "total_seconds": serializers.IntegerField(),
                    "days": inline_serializer(
                        "TimeHistoryDay",
                        {
                            "date": serializers.DateField(),
                            "total_seconds": serializers.IntegerField(),
                            "entries": TimeEntrySerializer(many=True),
                        },
                        many=True,
                    ),
                },
            )
        },
        tags=["time"],
        description="`custom` needs `from` and `to` (days, both included; at most 366 days).",
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        period = filters.validated_data["period"]
        first, last = time_period(
            period, filters.validated_data.get("from"), filters.validated_data.get("to")
        )
        days = time_history(mechanic_from(request), first, last)
        return Response(
            {
                "period": period,
                "from": first,
                "to": last,
                "total_seconds": sum(day.total_seconds for day in days),
                "days": [
                    {
                        "date": day.day,
                        "total_seconds": day.total_seconds,
                        "entries": TimeEntrySerializer(day.entries, many=True).data,
                    }
                    for day in days
                ],
            }
        )
