from django.urls import path

from events import apis

urlpatterns = [
    path("events", apis.ObserverEventListApi.as_view(), name="observer-events"),
    path("events/<int:sequence>", apis.ObserverEventDetailApi.as_view(), name="observer-event"),
    path("keys", apis.ObserverKeyListApi.as_view(), name="observer-keys"),
    path(
        "verification-spec",
        apis.VerificationSpecApi.as_view(),
        name="observer-verification-spec",
    ),
    path("export", apis.ExportApi.as_view(), name="observer-export"),
    path("checkpoints", apis.CheckpointListApi.as_view(), name="observer-checkpoints"),
    path(
        "checkpoints/latest",
        apis.CheckpointLatestApi.as_view(),
        name="observer-checkpoint-latest",
    ),
    path("proofs/inclusion", apis.InclusionProofApi.as_view(), name="observer-proof-inclusion"),
    path(
        "proofs/consistency",
        apis.ConsistencyProofApi.as_view(),
        name="observer-proof-consistency",
    ),
    path("roots", apis.RootApi.as_view(), name="observer-roots"),
]
