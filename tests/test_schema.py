from io import StringIO

from django.core.management import call_command


def test_openapi_schema__validates_without_warnings():
    # Fuzzing and clients rely on the schema being whole: a warning is a missing part.
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=StringIO())
