"""The public observer API (SPEC 3.7): read-only, unauthenticated, cacheable, throttled."""

import json
from collections.abc import Iterator
from typing import Any

from django.http import StreamingHttpResponse
from django.utils.cache import patch_cache_control
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from conclave.exceptions import NotFound, ValidationFailed
from conclave.openapi import ErrorSerializer
from conclave.serializers import StrictInputSerializer
from events import crypto, merkle, tree
from events.models import Event, SigningMode
from events.selectors import all_keys, checkpoint_json, checkpoints_after, latest_checkpoint

MAX_PAGE = 1000


def event_json(event: Event) -> dict[str, Any]:
    """Every column of SPEC 3.2; timestamps exactly as hashed."""
    return {
        "sequence": event.sequence,
        "event_type": event.event_type,
        "payload": event.payload,
        "agent_id": event.agent_id,
        "signing_key_id": event.signing_key_id,
        "signing_mode": event.signing_mode,
        "local_timestamp": crypto.format_timestamp(event.local_timestamp),
        "authority_timestamp": crypto.format_timestamp(event.authority_timestamp),
        "prev_hash": event.prev_hash,
        "content_hash": event.content_hash,
        "signature": event.signature,
        "witness_id": event.witness_id,
        "witness_key_id": event.witness_key_id,
        "witness_signature": event.witness_signature,
        "schema_version": event.schema_version,
    }


class NoParameters(StrictInputSerializer):
    pass


class ObserverApi(APIView):
    """The public log's reads. Each reads its query string with its `query_serializer` into
    `self.query`, refusing a parameter it does not take (`?limit=` on the export would
    otherwise send the whole log)."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (ScopedRateThrottle,)
    throttle_scope = "observer"
    query_serializer: type[serializers.Serializer] = NoParameters
    query: dict[str, Any]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.query = _query(self.query_serializer, request)


def _query(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    params = serializer_class(data=request.query_params)  # (one instance: its fields built once)
    unknown = set(request.query_params) - set(params.fields)
    if unknown:
        raise ValidationFailed({name: ["Unknown parameter."] for name in sorted(unknown)})
    params.is_valid(raise_exception=True)
    return params.validated_data


def _immutable(data: dict[str, Any]) -> Response:
    """Roots and proofs of a given size never change once the log has that size."""
    response = Response(data)
    patch_cache_control(response, public=True, max_age=31536000, immutable=True)
    return response


@extend_schema_serializer(component_name="ObserverEvent")
class EventSerializer(serializers.Serializer):
    sequence = serializers.IntegerField()
    event_type = serializers.CharField()
    payload = serializers.JSONField()
    agent_id = serializers.CharField()
    signing_key_id = serializers.CharField()
    signing_mode = serializers.ChoiceField(choices=SigningMode.choices)
    local_timestamp = serializers.CharField()
    authority_timestamp = serializers.CharField()
    prev_hash = serializers.CharField()
    content_hash = serializers.CharField()
    signature = serializers.CharField()
    witness_id = serializers.CharField()
    witness_key_id = serializers.CharField()
    witness_signature = serializers.CharField()
    schema_version = serializers.IntegerField()


class ObserverEventListApi(ObserverApi):
    class FilterSerializer(StrictInputSerializer):
        after_sequence = serializers.IntegerField(min_value=0, default=0)
        limit = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=100)
        event_type = serializers.CharField(max_length=100, required=False)
        since = serializers.DateTimeField(required=False)
        until = serializers.DateTimeField(required=False)
        as_of_sequence = serializers.IntegerField(min_value=0, required=False)

    query_serializer = FilterSerializer

    @extend_schema_serializer(component_name="ObserverEventPage")
    class OutputSerializer(serializers.Serializer):
        events = EventSerializer(many=True)
        next_after_sequence = serializers.IntegerField(allow_null=True)

    @extend_schema(
        operation_id="observer_events",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer},
        tags=["observer"],
    )
    def get(self, request: Request) -> Response:
        params = self.query

        events = Event.objects.filter(sequence__gt=params["after_sequence"]).order_by("sequence")
        if "event_type" in params:
            events = events.filter(event_type=params["event_type"])
        if "since" in params:
            events = events.filter(authority_timestamp__gte=params["since"])
        if "until" in params:
            events = events.filter(authority_timestamp__lt=params["until"])
        if "as_of_sequence" in params:
            events = events.filter(sequence__lte=params["as_of_sequence"])
        page = list(events[: params["limit"]])
        response = Response(
            {
                "events": [event_json(event) for event in page],
                "next_after_sequence": page[-1].sequence if len(page) == params["limit"] else None,
            }
        )
        patch_cache_control(response, public=True, max_age=5)
        return response


class ObserverEventDetailApi(ObserverApi):
    @extend_schema(
        operation_id="observer_event", responses={200: EventSerializer}, tags=["observer"]
    )
    def get(self, request: Request, sequence: int) -> Response:
        event = Event.objects.filter(sequence=sequence).first()
        if event is None:
            raise NotFound(f"No event with sequence {sequence}.")
        response = Response(event_json(event))
        patch_cache_control(response, public=True, max_age=31536000, immutable=True)
        return response


class ObserverKeyListApi(ObserverApi):
    @extend_schema_serializer(component_name="ObserverKey")
    class KeySerializer(serializers.Serializer):
        key_id = serializers.CharField()
        owner = serializers.CharField()
        kind = serializers.ChoiceField(choices=["agent", "witness", "checkpoint", "keeper"])
        algorithm = serializers.CharField()
        public_key = serializers.CharField()
        active_from = serializers.DateTimeField()
        active_until = serializers.DateTimeField(allow_null=True)

    @extend_schema_serializer(component_name="ObserverKeyList")
    class OutputSerializer(serializers.Serializer):
        keys = serializers.ListField(child=serializers.DictField())

    @extend_schema(
        operation_id="observer_keys", responses={200: OutputSerializer}, tags=["observer"]
    )
    def get(self, request: Request) -> Response:
        data = self.KeySerializer(all_keys(), many=True).data
        response = Response({"keys": data})
        patch_cache_control(response, public=True, max_age=30)
        return response


VERIFICATION_SPEC: dict[str, Any] = {
    "schema_version": crypto.SCHEMA_VERSION,
    "content_hash": {
        "algorithm": "SHA-256",
        "encoding": "lowercase hex",
        "input": "RFC 8785 (JSON Canonicalization Scheme) serialisation of the content object",
        "content_fields": [
            "schema_version", "sequence", "event_type", "payload", "agent_id",
            "signing_key_id", "signing_mode", "local_timestamp", "prev_hash",
        ],
        "local_timestamp_format": "RFC 3339, UTC, microseconds, Z suffix "
        "(YYYY-MM-DDTHH:MM:SS.ffffffZ)",
    },
    "chain": {
        "first_sequence": 1,
        "sequence_step": 1,
        "genesis_prev_hash": "0" * 64,
        "prev_hash": "content_hash of the event with sequence - 1",
    },
    "signature": {
        "algorithm": "Ed25519",
        "key": "signing_key_id: an agent key of agent_id active at local_timestamp",
        "message": "the 32 raw bytes of the content_hash digest",
        "encoding": "lowercase hex (64 bytes)",
    },
    "witness_signature": {
        "algorithm": "Ed25519",
        "key": "witness_key_id: a witness key of witness_id (not agent_id) active at "
        "local_timestamp",
        "message": "the 32 digest bytes followed by the 64 signature bytes",
        "encoding": "lowercase hex (64 bytes)",
    },
    "merkle_tree": {
        "standard": "RFC 6962 section 2.1 (RFC 9162 section 2.1)",
        "leaf_index": "sequence - 1",
        "leaf_hash": "SHA-256(0x00 || the 32 raw bytes of content_hash)",
        "node_hash": "SHA-256(0x01 || left || right)",
        "split": "the largest power of two smaller than the number of leaves",
        "empty_root": "SHA-256 of the empty string",
        "endpoints": {
            "root": "/v1/observer/roots?tree_size=N",
            "inclusion": "/v1/observer/proofs/inclusion?sequence=S&tree_size=N",
            "consistency": "/v1/observer/proofs/consistency?first=M&second=N",
        },
    },
    "checkpoint": {
        "endpoints": ["/v1/observer/checkpoints/latest", "/v1/observer/checkpoints"],
        "signed_message": "RFC 8785 serialisation of {tree_size, root_hash, timestamp}",
        "signature": "Ed25519 by key_id, a key of kind checkpoint active at timestamp",
        "cosignatures": "Ed25519 by each listed witness key, active at timestamp, over the "
        "same message",
    },
    "keys": {
        "endpoint": "/v1/observer/keys",
        "public_key_encoding": "lowercase hex of the 32-byte raw Ed25519 public key",
        "active": "active_from <= t and (active_until is null or t < active_until)",
    },
}  # fmt: skip


class VerificationSpecApi(ObserverApi):
    @extend_schema(
        operation_id="observer_verification_spec",
        responses={200: OpenApiTypes.OBJECT},
        tags=["observer"],
    )
    def get(self, request: Request) -> Response:
        response = Response(VERIFICATION_SPEC)
        patch_cache_control(response, public=True, max_age=3600)
        return response


def _export_lines(after: int) -> Iterator[bytes]:
    while True:
        page = list(Event.objects.filter(sequence__gt=after).order_by("sequence")[:MAX_PAGE])
        if not page:
            return
        for event in page:
            yield json.dumps(event_json(event), separators=(",", ":")).encode() + b"\n"
        after = page[-1].sequence


class ExportApi(ObserverApi):
    class InputSerializer(StrictInputSerializer):
        after_sequence = serializers.IntegerField(
            min_value=0, default=0, help_text="Resume after this event (a broken download's last)."
        )

    query_serializer = InputSerializer

    @extend_schema(
        operation_id="observer_export",
        parameters=[InputSerializer],
        responses={(200, "application/x-ndjson"): EventSerializer},
        description="The whole log as JSON Lines, one event a line, in sequence order.",
        tags=["observer"],
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        after = self.query["after_sequence"]
        return StreamingHttpResponse(_export_lines(after), content_type="application/x-ndjson")


@extend_schema_serializer(component_name="ObserverCheckpoint")
class CheckpointSerializer(serializers.Serializer):
    @extend_schema_serializer(component_name="ObserverCosignature")
    class CosignatureSerializer(serializers.Serializer):
        witness_id = serializers.CharField()
        key_id = serializers.CharField()
        signature = serializers.CharField()

    tree_size = serializers.IntegerField()
    root_hash = serializers.CharField()
    timestamp = serializers.CharField()
    key_id = serializers.CharField()
    signature = serializers.CharField()
    cosignatures = CosignatureSerializer(many=True)


class CheckpointLatestApi(ObserverApi):
    @extend_schema(
        operation_id="observer_checkpoint_latest",
        responses={
            200: CheckpointSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No checkpoint signed yet."),
        },
        description="The latest signed tree head (SPEC 3.6). The signature is Ed25519 by "
        "`key_id` over the RFC 8785 form of {tree_size, root_hash, timestamp}; each witness "
        "co-signs the same bytes.",
        tags=["observer"],
    )
    def get(self, request: Request) -> Response:
        checkpoint = latest_checkpoint()
        if checkpoint is None:
            raise NotFound("No checkpoint has been signed yet.")
        response = Response(checkpoint_json(checkpoint))
        patch_cache_control(response, public=True, max_age=5)
        return response


class CheckpointListApi(ObserverApi):
    class FilterSerializer(StrictInputSerializer):
        after_tree_size = serializers.IntegerField(min_value=0, default=0)
        limit = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=100)

    query_serializer = FilterSerializer

    @extend_schema_serializer(component_name="ObserverCheckpointPage")
    class OutputSerializer(serializers.Serializer):
        checkpoints = CheckpointSerializer(many=True)
        next_after_tree_size = serializers.IntegerField(allow_null=True)

    @extend_schema(
        operation_id="observer_checkpoints",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer},
        tags=["observer"],
    )
    def get(self, request: Request) -> Response:
        params = self.query
        page = checkpoints_after(params["after_tree_size"], params["limit"])
        response = Response(
            {
                "checkpoints": [checkpoint_json(checkpoint) for checkpoint in page],
                "next_after_tree_size": page[-1].tree_size
                if len(page) == params["limit"]
                else None,
            }
        )
        patch_cache_control(response, public=True, max_age=5)
        return response


class InclusionProofApi(ObserverApi):
    class InputSerializer(StrictInputSerializer):
        sequence = serializers.IntegerField(min_value=1)
        tree_size = serializers.IntegerField(min_value=1)

    query_serializer = InputSerializer

    @extend_schema_serializer(component_name="ObserverInclusionProof")
    class OutputSerializer(serializers.Serializer):
        leaf_index = serializers.IntegerField()
        tree_size = serializers.IntegerField()
        audit_path = serializers.ListField(child=serializers.CharField())

    @extend_schema(
        operation_id="observer_inclusion_proof",
        parameters=[InputSerializer],
        responses={200: OutputSerializer},
        description="RFC 6962 audit path of event `sequence` (leaf sequence - 1) in the tree "
        "of the first `tree_size` events, leaf level first.",
        tags=["observer"],
    )
    def get(self, request: Request) -> Response:
        params = self.query
        sequence, size = params["sequence"], params["tree_size"]
        try:
            path = tree.tree_inclusion_proof(sequence, size)
        except merkle.TreeRangeError as exc:
            raise ValidationFailed({"tree_size": [str(exc)]}) from exc
        return _immutable(
            {"leaf_index": sequence - 1, "tree_size": size, "audit_path": [h.hex() for h in path]}
        )


class ConsistencyProofApi(ObserverApi):
    class InputSerializer(StrictInputSerializer):
        first = serializers.IntegerField(min_value=1)
        second = serializers.IntegerField(min_value=1)

    query_serializer = InputSerializer

    @extend_schema_serializer(component_name="ObserverConsistencyProof")
    class OutputSerializer(serializers.Serializer):
        first = serializers.IntegerField()
        second = serializers.IntegerField()
        proof = serializers.ListField(child=serializers.CharField())

    @extend_schema(
        operation_id="observer_consistency_proof",
        parameters=[InputSerializer],
        responses={200: OutputSerializer},
        description="RFC 6962 consistency proof that the tree of `second` events extends the "
        "tree of the first `first` events.",
        tags=["observer"],
    )
    def get(self, request: Request) -> Response:
        params = self.query
        first, second = params["first"], params["second"]
        try:
            proof = tree.tree_consistency_proof(first, second)
        except merkle.TreeRangeError as exc:
            raise ValidationFailed({"second" if first <= second else "first": [str(exc)]}) from exc
        return _immutable({"first": first, "second": second, "proof": [h.hex() for h in proof]})


class RootApi(ObserverApi):
    class InputSerializer(StrictInputSerializer):
        tree_size = serializers.IntegerField(min_value=0)

    query_serializer = InputSerializer

    @extend_schema_serializer(component_name="ObserverRoot")
    class OutputSerializer(serializers.Serializer):
        tree_size = serializers.IntegerField()
        root_hash = serializers.CharField()

    @extend_schema(
        operation_id="observer_root",
        parameters=[InputSerializer],
        responses={200: OutputSerializer},
        description="The RFC 6962 Merkle tree head of the first `tree_size` events.",
        tags=["observer"],
    )
    def get(self, request: Request) -> Response:
        size = self.query["tree_size"]
        try:
            root_hash = tree.tree_root(size)
        except merkle.TreeRangeError as exc:
            raise ValidationFailed({"tree_size": [str(exc)]}) from exc
        return _immutable({"tree_size": size, "root_hash": root_hash.hex()})
