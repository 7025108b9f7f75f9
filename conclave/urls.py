from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from conclave import apis

handler400 = "conclave.exception_handlers.json_bad_request"
handler403 = "conclave.exception_handlers.json_permission_denied"
handler404 = "conclave.exception_handlers.json_page_not_found"
handler500 = "conclave.exception_handlers.json_server_error"

urlpatterns = [
    # The workshop's API first: orders are the busiest writes, and Django tries the patterns
    # in turn (none of these paths is also another pattern's).
    path("api/", include("orders.urls")),
    path("v1/health", apis.HealthApi.as_view(), name="health"),
    path("v1/ready", apis.ReadyApi.as_view(), name="ready"),
    path(
        "v1/health/constitutional",
        apis.ConstitutionalHealthApi.as_view(),
        name="health-constitutional",
    ),
    path("health", apis.HealthAliasApi.as_view(), name="health-alias"),
    path("metrics", apis.metrics_view, name="metrics"),
    path("v1/observer/", include("events.urls")),
    path("v1/admin/halt", apis.HaltApi.as_view(), name="halt"),
    path("v1/admin/halt/ceremony", apis.CeremonyApi.as_view(), name="halt-ceremony"),
    path(
        "v1/admin/halt/ceremony/approve",
        apis.CeremonyApproveApi.as_view(),
        name="halt-ceremony-approve",
    ),
    path("v1/admin/halt/clear", apis.HaltClearApi.as_view(), name="halt-clear"),
    path("api/me", apis.MeApi.as_view(), name="me"),
    path("api/", include("flags.urls")),
    path("api/", include("bot.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file: no inline script for the CSP.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    path("admin/", admin.site.urls),
    path("mechanic/", include("mechanic_ui.urls")),
]
