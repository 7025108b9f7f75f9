"""A web process settles its heap once the application is loaded (conclave.heap): what it
loaded, the URL conf and every view included, is out of the garbage collector's sight."""

import json
import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT, clean_env

LOADED = textwrap.dedent(
    """
    import gc, json
    import conclave.wsgi
    from django.urls import reverse
    settled, loose = gc.get_freeze_count(), len(gc.get_objects())
    reverse("halt")  # (the halt middleware's first look, on the first write)
    print(json.dumps({"settled": settled, "loose": loose, "reversed": len(gc.get_objects())}))
    """
)


def test_web_application__loaded__its_heap_settled_with_the_url_conf():
    result = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", LOADED],
        cwd=REPO_ROOT,
        env=clean_env(DJANGO_SETTINGS_MODULE="conclave.settings.test"),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    heap = json.loads(result.stdout)
    # Django, DRF and the apps: well over 100,000 objects on this machine.
    assert heap["settled"] > 50_000
    assert heap["loose"] < 1_000
    # The URL conf and its map of names were loaded before, not by the first request.
    assert heap["reversed"] - heap["loose"] < 500
