from django.urls import path

from flags import apis

urlpatterns = [
    path("config/feature-flags", apis.FeatureFlagsApi.as_view(), name="feature-flags"),
    path("admin/feature-flags", apis.FlagListApi.as_view(), name="feature-flags-detail"),
    path(
        "admin/feature-flags/kill-switch",
        apis.KillSwitchApi.as_view(),
        name="feature-flags-kill-switch",
    ),
    path("admin/feature-flags/<str:name>", apis.FlagSetApi.as_view(), name="feature-flag-set"),
]
