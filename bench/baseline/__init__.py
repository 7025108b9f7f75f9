"""The load benchmark's baseline app: a bare Django JSON view and a bare DRF view, served by
gunicorn exactly as the product is (bench.load)."""
