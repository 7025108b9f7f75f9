"""The workshop's REST API (SPEC 4), one view per operation."""
