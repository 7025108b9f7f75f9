import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conclave.settings.production")

django_application = get_wsgi_application()

from django.urls import get_resolver  # noqa: E402 - needs Django set up

from conclave.heap import settle_heap  # noqa: E402
from flags.fastpath import with_feature_flags_fast_path  # noqa: E402

application = with_feature_flags_fast_path(django_application)

# What the first requests would load (the URL conf, every view it imports, its map of names),
# loaded now, so that it is settled with the rest.
get_resolver().reverse_dict  # noqa: B018 - built on its first use
settle_heap()
