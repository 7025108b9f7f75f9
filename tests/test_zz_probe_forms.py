import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PK = "ab" * 32


def test_admin_add_forms(system_keys, mechanic):
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    posts = [
        ("/admin/events/keeperkey/add/", {"keeper_id": "KEEPER:x", "public_key_hex": PK}),
        ("/admin/events/keeperkey/add/", {"keeper_id": "KEEPER:x", "public_key_hex": PK}),
        ("/admin/events/keeperkey/add/", {"keeper_id": "KEEPER:y", "public_key_hex": PK}),
        ("/admin/events/keeperkey/add/", {"keeper_id": " ", "public_key_hex": "cd" * 32}),
        ("/admin/events/keeperkey/add/", {"keeper_id": "a\u202eb", "public_key_hex": "00" * 32}),
        ("/admin/events/agentkey/add/", {"kind": "witness", "agent_id": "WITNESS:1"}),
        ("/admin/events/agentkey/add/", {"kind": "agent", "agent_id": "SYSTEM:WITNESS_1"}),
        ("/admin/events/agentkey/add/", {"kind": "checkpoint", "agent_id": "x"}),
        ("/admin/events/agentkey/add/", {"kind": "agent", "agent_id": " "}),
        (
            "/admin/orders/category/add/",
            {"name_en": "A", "name_he": "", "name_ru": "", "sort_order": "99999999999999999999"},
        ),
        (
            "/admin/orders/category/add/",
            {"name_en": "A", "name_he": "", "name_ru": "", "sort_order": "-1"},
        ),
        (
            "/admin/orders/part/add/",
            {"category": "1", "name_en": "P", "price": "1e10", "sort_order": "0"},
        ),
        (
            "/admin/orders/part/add/",
            {"category": "1", "name_en": "P", "price": "NaN", "sort_order": "0"},
        ),
        (
            "/admin/orders/part/add/",
            {"category": "99999999999999999999", "name_en": "P", "price": "1", "sort_order": "0"},
        ),
        (
            "/admin/orders/part/add/",
            {"category": "abc", "name_en": "P", "price": "-1", "sort_order": "0"},
        ),
        ("/admin/auth/user/add/", {"username": "x" * 151, "password1": "a", "password2": "a"}),
        ("/admin/auth/group/add/", {"name": "g", "permissions": ["99999999999999999999"]}),
        ("/admin/auth/group/add/", {"name": "g2", "permissions": ["abc"]}),
        ("/admin/authtoken/tokenproxy/add/", {"user": "99999999999999999999"}),
        ("/admin/authtoken/tokenproxy/add/", {"user": "abc"}),
        (
            "/admin/orders/mechanicprofile/add/",
            {
                "username": "m1",
                "password": "a-long-enough-password-1",
                "language": "xx",
                "display_name": "x",
            },
        ),
        (
            "/admin/flags/featureflag/ENABLE_CAR_NUMBER/change/",
            {"enabled": "on", "description": "x"},
        ),
        ("/admin/orders/order/1/change/", {"status": "completed"}),
        ("/admin/orders/order/1/status/", {"status": "bogus"}),
        ("/admin/orders/order/99999999999999999999/status/", {"status": "ready"}),
        ("/admin/orders/order/1/assign/", {"mechanic_id": "99999999999999999999"}),
        ("/admin/orders/mechanicprofile/1/telegram/", {"telegram_chat_id": "99999999999999999999"}),
        ("/admin/orders/mechanicprofile/1/password/", {"new_password": "x" * 100000}),
        ("/admin/halt/", {"reason": "x" * 100000}),
        ("/admin/halt/", {"reason": "\x01", "confirmed": "yes"}),
        ("/admin/halt/ceremony/", {"action": "approve", "keeper_key_id": "zz", "signature": "zz"}),
        ("/admin/flags/featureflag/rollout/", {"phase": "x" * 10000}),
        ("/admin/flags/featureflag/kill-switch/", {"confirmed": "maybe"}),
    ]
    errors = []
    for url, data in posts:
        response = client.post(url, data)
        print(url, response.status_code)
        if response.status_code >= 500:
            errors.append((url, data))
    assert errors == []
