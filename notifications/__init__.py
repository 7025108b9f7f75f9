"""Telegram notifications through a transactional outbox and Celery."""
