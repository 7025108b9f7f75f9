"""Append-only, hash-chained, signed and witnessed event store; keys; observer API."""
