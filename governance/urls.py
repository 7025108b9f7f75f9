from django.urls import path

from governance import apis

urlpatterns = [
    path("halt", apis.HaltApi.as_view(), name="halt"),
    path("halt/ceremony", apis.CeremonyApi.as_view(), name="halt-ceremony"),
    path("halt/ceremony/approve", apis.CeremonyApproveApi.as_view(), name="halt-ceremony-approve"),
    path("halt/clear", apis.HaltClearApi.as_view(), name="halt-clear"),
]
