from django.http import HttpRequest, JsonResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


def bare_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


class BareDrfView(APIView):
    """Parses the JSON body and answers 201: DRF's own cost for a POST, nothing else."""

    def post(self, request: Request) -> Response:
        return Response({"received": len(request.data)}, status=201)


urlpatterns = [
    path("bare", bare_view),
    path("bare-drf", BareDrfView.as_view()),
]
