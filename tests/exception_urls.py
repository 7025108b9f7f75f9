"""Views that fail in each way the API can fail, for the exception handler's tests."""

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.urls import include, path
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from conclave import exceptions
from conclave.urls import handler400, handler403, handler404, handler500  # noqa: F401

DOMAIN_ERRORS = {
    "validation": exceptions.ValidationFailed({"vin": ["VIN must be 6 to 17 letters or digits."]}),
    "not-found": exceptions.NotFound("No order 42."),
    "feature-disabled": exceptions.FeatureDisabled("ENABLE_PART_CATEGORIES is off."),
    "forbidden": exceptions.Forbidden(),
    "conflict": exceptions.Conflict("Cannot go from completed to new.", allowed=["cancelled"]),
    "halted": exceptions.Halted("integrity check failed at sequence 7"),
}


class DomainErrorApi(APIView):
    permission_classes = (AllowAny,)

    def get(self, request, kind):
        raise DOMAIN_ERRORS[kind]


class EchoApi(APIView):
    """Accepts a JSON body with a required integer `quantity`."""

    permission_classes = (AllowAny,)

    class InputSerializer(serializers.Serializer):
        quantity = serializers.IntegerField(min_value=1)

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data)


class SessionWriteApi(APIView):
    permission_classes = (IsAuthenticated,)

    def post(self, request):
        return Response({"ok": True})


class DjangoErrorApi(APIView):
    permission_classes = (AllowAny,)

    def get(self, request, kind):
        if kind == "validation":
            raise DjangoValidationError({"car_number": ["Too long."]})
        if kind == "http404":
            raise Http404("gone")
        if kind == "permission":
            raise PermissionDenied
        raise RuntimeError("unexpected failure")


class TightlyThrottledApi(APIView):
    permission_classes = (AllowAny,)

    class Throttle(AnonRateThrottle):
        rate = "2/min"

    throttle_classes = (Throttle,)

    def get(self, request):
        return Response({"ok": True})


def refusing_page(request, kind):
    """A page (not DRF) whose service refuses: the middleware answers it."""
    raise DOMAIN_ERRORS[kind]


urlpatterns = [
    path("admin/test/refused/<str:kind>", refusing_page),
    path("mechanic/test/refused/<str:kind>", refusing_page),
    path("page/test/refused/<str:kind>", refusing_page),
    path("api/test/domain/<str:kind>", DomainErrorApi.as_view()),
    path("api/test/django/<str:kind>", DjangoErrorApi.as_view()),
    path("api/test/echo", EchoApi.as_view()),
    path("api/test/session-write", SessionWriteApi.as_view()),
    path("api/test/throttled", TightlyThrottledApi.as_view()),
    path("", include("conclave.urls")),  # the pages' templates name its routes
]
