import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conclave.settings.production")

django_application = get_wsgi_application()

from flags.fastpath import with_feature_flags_fast_path  # noqa: E402 - needs Django set up

application = with_feature_flags_fast_path(django_application)
