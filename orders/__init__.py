"""The workshop: orders, catalog, mechanics."""
