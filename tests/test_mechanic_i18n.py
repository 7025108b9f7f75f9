"""The mechanic pages in English, Hebrew and Russian (ENABLE_MECH_I18N): the language chosen,
kept on the profile and in a cookie, right-to-left Hebrew, the API's messages in the page's
language, and catalogues with every text translated. In a real browser:
test_mechanic_browser.py."""

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.conf import settings
from django.test import Client
from django.utils import translation
from django.utils.translation.template import templatize

from conclave.halt import forget_halt_status
from conclave.services import halt_raise
from events.models import Event
from orders.models import MechanicProfile, Order, OrderWork
from orders.services import order_create, order_status_change
from tests.workshop import MECHANIC_PASSWORD, RUNBOOK_ORDER, flag_on

pytestmark = pytest.mark.django_db

LANGUAGES = ("he", "ru")
ROOT = Path(settings.BASE_DIR)
SOURCES = [
    *sorted((ROOT / "mechanic_ui").rglob("*.html")),
    *sorted((ROOT / "mechanic_ui").rglob("*.py")),
]
SOURCES += [ROOT / "orders" / "validators.py", ROOT / "orders" / "selectors.py"]
SOURCES += [ROOT / "conclave" / "serializers.py"]  # the API input's words the pages can meet
SOURCES += sorted((ROOT / "orders" / "services").glob("*.py")) + [ROOT / "orders" / "models.py"]
GETTEXT_CALL = re.compile(
    r"""\b(?:gettext|gettext_lazy|gettext_noop|_)\(\s*u?(?P<q>['"])(?P<text>.+?)(?P=q)\s*\)"""
)
# A text with plural forms (a template's `blocktranslate count`): its singular and plural.
NGETTEXT_CALL = re.compile(
    r"""\bngettext\(\s*u?(?P<q>['"])(?P<one>.+?)(?P=q)\s*,\s*u?(?P=q)(?P<many>.+?)(?P=q)\s*,"""
)
PLACEHOLDER = re.compile(r"%\(\w+\)\w|\{\w+\}")  # gettext's and str.format's


def _translated(string: str | tuple[str, ...]) -> bool:
    return all(string) if isinstance(string, tuple) else bool(string)


def _unescaped(text: str) -> str:
    return text.encode().decode("unicode_escape").encode("latin-1").decode()


@pytest.fixture
def i18n(django_capture_on_commit_callbacks):
    flag_on("ENABLE_MECH_I18N", django_capture_on_commit_callbacks)


def signed_in(mechanic) -> Client:
    client = Client()
    client.force_login(mechanic.user)
    return client


def html_tag(page) -> str:
    return re.search(r"<html[^>]*>", page.content.decode())[0]


# --- The catalogues -------------------------------------------------------------------------------


def source_texts() -> set[str]:
    """Every text the pages and the messages they show put through gettext, found the way
    makemessages finds them (templates through Django's templatize)."""
    texts: set[str | tuple[str, str]] = set()
    for path in SOURCES:
        source = path.read_text()
        if path.suffix == ".html":
            source = templatize(source, origin=str(path))
        for match in GETTEXT_CALL.finditer(source):
            texts.add(_unescaped(match["text"]))
        for match in NGETTEXT_CALL.finditer(source):
            texts.add((_unescaped(match["one"]), _unescaped(match["many"])))
    return texts


def test_catalogues__every_text_translated_in_hebrew_and_russian():
    texts = source_texts()
    assert {"Dashboard", "Sign in", "In progress", "6 to 17 letters and digits."} <= texts
    assert ("Show the earlier comment", "Show the %(counter)s earlier comments") in texts
    for language in LANGUAGES:
        with open(ROOT / "locale" / language / "LC_MESSAGES" / "django.po", "rb") as f:
            catalogue = {m.id: m for m in read_po(f) if m.id}
        missing = sorted(texts - set(catalogue))
        assert missing == [], f"{language}: not in the catalogue (make messages): {missing}"
        untranslated = sorted(
            (m.id for m in catalogue.values() if m.fuzzy or not _translated(m.string)), key=str
        )
        assert untranslated == [], f"{language}: untranslated or fuzzy: {untranslated}"
        for message in catalogue.values():  # placeholders survive translation
            if isinstance(message.id, tuple):  # each form names no other; the last, the count
                forms, allowed = message.string, PLACEHOLDER.findall(message.id[1])
                assert all(set(PLACEHOLDER.findall(form)) <= set(allowed) for form in forms)
                assert PLACEHOLDER.findall(forms[-1]) == allowed, message.id
                continue
            assert PLACEHOLDER.findall(message.id) == PLACEHOLDER.findall(message.string), (
                message.id
            )


def test_catalogues__compiled_and_loaded():
    mo = [ROOT / "locale" / lang / "LC_MESSAGES" / "django.mo" for lang in LANGUAGES]
    assert all(path.exists() for path in mo), "compile them: pybabel compile -d locale -D django"
    with translation.override("he"):
        assert translation.gettext("Dashboard") == "לוח בקרה"
    with translation.override("ru"):
        assert translation.gettext("Dashboard") == "Панель"
        # Plural forms by Russian's rules: 1 and 21, 2 to 4, the rest.
        texts = ("Show the earlier comment", "Show the %(counter)s earlier comments")
        assert [translation.ngettext(*texts, n) % {"counter": n} for n in (21, 3, 11)] == [
            "Показать 21 более ранний комментарий",
            "Показать 3 более ранних комментария",
            "Показать 11 более ранних комментариев",
        ]


# --- Choosing the language --------------------------------------------------------------------------


def test_flag_off__english_without_a_switcher_whatever_the_browser_asks(mechanic):
    client = Client(HTTP_ACCEPT_LANGUAGE="he")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ru"

    page = client.get("/mechanic/login")
    refused = client.post("/mechanic/language", {"language": "he"})

    assert html_tag(page) == '<html lang="en" dir="ltr">'
    assert "language-switcher" not in page.content.decode()
    assert "Sign in" in page.content.decode()
    assert refused.status_code == 404
    assert refused.json()["error"] == "feature_disabled"


def test_flag_on__a_stranger_gets_the_cookie_then_the_browser_language(mechanic, i18n):
    hebrew = Client(HTTP_ACCEPT_LANGUAGE="he-IL,he;q=0.9,en;q=0.5").get("/mechanic/login")
    cookie = Client(HTTP_ACCEPT_LANGUAGE="he")
    cookie.cookies[settings.LANGUAGE_COOKIE_NAME] = "ru"
    russian = cookie.get("/mechanic/login")
    english = Client(HTTP_ACCEPT_LANGUAGE="fr").get("/mechanic/login")

    assert html_tag(hebrew) == '<html lang="he" dir="rtl">'
    assert "התחברות" in hebrew.content.decode()
    assert html_tag(russian) == '<html lang="ru" dir="ltr">'
    assert "Вход" in russian.content.decode()
    assert html_tag(english) == '<html lang="en" dir="ltr">'
    assert 'data-language="he" aria-pressed="false"' in english.content.decode()
    assert "Accept-Language" in hebrew["Vary"] and "Cookie" in hebrew["Vary"]


def test_switcher__kept_on_the_profile_and_in_the_cookie(mechanic, i18n):
    client = signed_in(mechanic)
    events_before = Event.objects.count()

    switched = client.post("/mechanic/language", {"language": "he", "next": "/mechanic/time"})
    page = client.get("/mechanic/time")
    other_device = signed_in(mechanic).get("/mechanic/")

    assert switched.status_code == 302 and switched["Location"] == "/mechanic/time"
    cookie = switched.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie.value == "he" and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert MechanicProfile.objects.get(pk=mechanic.pk).language == "he"
    assert Event.objects.count() > events_before  # the profile change is in the log
    assert html_tag(page) == '<html lang="he" dir="rtl">'
    assert "הזמן שלי" in page.content.decode()
    assert html_tag(other_device) == '<html lang="he" dir="rtl">'
    assert 'data-language="he" aria-pressed="true"' in other_device.content.decode()


def test_switcher__bad_language_or_foreign_next_refused(mechanic, i18n):
    client = signed_in(mechanic)

    bad = client.post("/mechanic/language", {"language": "fr"})
    missing = client.post("/mechanic/language", {})
    foreign = client.post(
        "/mechanic/language", {"language": "ru", "next": "https://evil.example/phish"}
    )

    assert bad.status_code == 400 and bad.json()["detail"] == {"language": ["One of en, he, ru."]}
    assert missing.status_code == 400
    assert foreign.status_code == 302 and foreign["Location"] == "/mechanic/"
    assert MechanicProfile.objects.get(pk=mechanic.pk).language == "ru"


def test_switcher__needs_the_csrf_token(mechanic, i18n):
    client = Client(enforce_csrf_checks=True)
    client.force_login(mechanic.user)

    refused = client.post("/mechanic/language", {"language": "he"})

    assert refused.status_code == 403
    assert MechanicProfile.objects.get(pk=mechanic.pk).language == "en"


def test_switcher__while_halted_the_cookie_changes_not_the_profile(mechanic, i18n):
    client = signed_in(mechanic)
    halt_raise(reason="integrity check failed", actor="test", channel="command")
    forget_halt_status()

    switched = client.post("/mechanic/language", {"language": "ru", "next": "/mechanic/"})

    assert switched.status_code == 302
    assert switched.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ru"
    assert MechanicProfile.objects.get(pk=mechanic.pk).language == "en"


def test_login__the_profile_language_goes_to_this_device(mechanic, i18n):
    MechanicProfile.objects.filter(pk=mechanic.pk).update(language="ru")
    client = Client()

    signed = client.post(
        "/mechanic/login", {"username": mechanic.user.username, "password": MECHANIC_PASSWORD}
    )
    client.post("/mechanic/logout")
    login_again = client.get("/mechanic/login")

    assert signed.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ru"
    assert html_tag(login_again) == '<html lang="ru" dir="ltr">'


# --- What the pages and the API say ---------------------------------------------------------------


def test_statuses_and_catalogue_names_in_the_pages_language(mechanic, i18n):
    from orders.models import Category
    from orders.services import order_create
    from tests.workshop import RUNBOOK_ORDER

    order_create(**RUNBOOK_ORDER, created_by=mechanic.user)
    Category.objects.create(name_en="Brakes", name_he="בלמים", name_ru="Тормоза")
    MechanicProfile.objects.filter(pk=mechanic.pk).update(language="ru")
    client = signed_in(mechanic)

    dashboard = client.get("/mechanic/").content.decode()
    form_page = client.get("/mechanic/orders/new").content.decode()

    assert 'class="badge status-new">Новые</span>' in dashboard
    assert "Мои заказы" in dashboard
    assert "Отправить заказ" in form_page


def test_form_errors_in_the_pages_language(mechanic, i18n):
    MechanicProfile.objects.filter(pk=mechanic.pk).update(language="he")

    page = signed_in(mechanic).post(
        "/mechanic/orders/new",
        {"vin": "BAD", "part_type": "Brake pads", "original_or_analog": "original"},
    )

    assert page.status_code == 200
    assert "6 עד 17 אותיות וספרות." in page.content.decode()


def test_api__messages_in_the_accept_language_english_without_one(mechanic, i18n):
    client = signed_in(mechanic)

    hebrew = client.post("/api/mechanic/time/stop", HTTP_ACCEPT_LANGUAGE="he-IL,he;q=0.9")
    russian = client.post("/api/mechanic/time/stop", HTTP_ACCEPT_LANGUAGE="ru")
    plain = client.post("/api/mechanic/time/stop")

    assert hebrew.status_code == russian.status_code == plain.status_code == 409
    assert hebrew.json()["detail"] == "אין לכם טיימר פועל."
    assert russian.json()["detail"] == "У вас нет запущенного таймера."
    assert plain.json()["detail"] == "No timer of yours is running."
    assert hebrew.json()["error"] == plain.json()["error"] == "conflict"
    assert hebrew["Content-Language"] == "he" and "Content-Language" not in plain


def test_api__an_order_closed_meanwhile__its_refusal_in_the_pages_language(mechanic, i18n):
    """The order was cancelled (or completed) while the mechanic's page showed it open: the
    labour sent then is refused in the page's language (the page shows a 409's words as they
    come), its status named as the pages name it."""
    order = order_create(**{**RUNBOOK_ORDER, "car_number": ""}, created_by=mechanic.user)
    order_status_change(order_id=order.pk, status="cancelled", mechanic=mechanic)
    client = signed_in(mechanic)
    url, work = f"/api/orders/{order.pk}/works", {"name": "Diagnostics", "price": "20.00"}

    def sent(**headers):
        return client.post(url, work, content_type="application/json", **headers)

    hebrew, russian, plain = (
        sent(HTTP_ACCEPT_LANGUAGE="he"),
        sent(HTTP_ACCEPT_LANGUAGE="ru"),
        sent(),
    )

    assert hebrew.status_code == russian.status_code == plain.status_code == 409
    assert hebrew.json()["detail"] == f"הזמנה {order.pk} בוטלה; כבר לא ניתן לשנות אותה."
    assert russian.json()["detail"] == f"Заказ {order.pk} отменён; его больше нельзя изменить."
    assert plain.json()["detail"] == f"Order {order.pk} is cancelled; it can no longer be changed."
    assert hebrew.json()["status"] == plain.json()["status"] == "cancelled"
    assert not OrderWork.objects.exists()


def test_api__a_limit_told_in_each_request_s_own_language(mechanic, i18n):
    """DRF words a field's limits once and keeps the sentence: shared by every request's copy
    of the field, the first request's language would be every later one's."""
    order = order_create(**{**RUNBOOK_ORDER, "car_number": ""}, created_by=mechanic.user)
    client = signed_in(mechanic)

    def refused(**headers) -> list[str]:
        work = {"name": "Diagnostics", "price": "-5"}
        answer = client.post(
            f"/api/orders/{order.pk}/works", work, content_type="application/json", **headers
        )
        assert answer.status_code == 400
        return answer.json()["detail"]["price"]

    russian, english = refused(HTTP_ACCEPT_LANGUAGE="ru"), refused()
    again = (refused(HTTP_ACCEPT_LANGUAGE="ru"), refused())

    assert english == ["Ensure this value is greater than or equal to 0."]
    assert russian != english and re.search("[а-я]", russian[0])
    assert again == (russian, english)
    assert not OrderWork.objects.exists()


def test_api__a_typed_price_or_name_refused_in_the_pages_language(mechanic, i18n):
    """What the labour and part forms let a mechanic type and the API refuses (a price with a
    comma, three decimals, a name of spaces) is told in Hebrew and Russian too: DRF's own
    catalogue holds no Hebrew."""
    order = order_create(**{**RUNBOOK_ORDER, "car_number": ""}, created_by=mechanic.user)
    client = signed_in(mechanic)

    def refused(language: str, **work: str) -> dict:
        answer = client.post(
            f"/api/orders/{order.pk}/works",
            {"name": "Diagnostics", "price": "30.00", **work},
            content_type="application/json",
            HTTP_ACCEPT_LANGUAGE=language,
        )
        assert answer.status_code == 400
        return answer.json()["detail"]

    assert refused("he", price="30,50") == {"price": ['סכום נכתב בספרות, למשל "12.50".']}
    assert refused("ru", price="30,50") == {"price": ['Сумма пишется цифрами, например "12.50".']}
    assert refused("en", price="30,50") == {
        "price": ['An amount is a string of digits, such as "12.50".']
    }
    assert refused("he", price="12.505") == {"price": ["לכל היותר 2 ספרות אחרי הנקודה העשרונית."]}
    assert refused("ru", price="12.505") == {"price": ["Знаков после точки: не больше 2."]}
    assert refused("he", price="-5") == {"price": ["הערך צריך להיות 0 או יותר."]}
    assert refused("he", name="   ") == {"name": ["שדה זה אינו יכול להיות ריק."]}
    assert refused("en", name="   ") == {"name": ["This field may not be blank."]}
    assert not OrderWork.objects.exists()


def test_halted__a_form_post_gets_the_page_in_its_language(mechanic, i18n):
    MechanicProfile.objects.filter(pk=mechanic.pk).update(language="he", phone="")
    client = signed_in(mechanic)
    halt_raise(reason="chain check failed at 9", actor="test", channel="command")
    forget_halt_status()

    refused = client.post("/mechanic/profile", {"form": "phone", "phone": "+972 50 000 0000"})

    assert refused.status_code == 503 and refused["Retry-After"] == "60"
    assert refused["Content-Type"].startswith("text/html")
    html = refused.content.decode()
    assert "לא נשמר" in html and "chain check failed at 9" in html
    assert 'href="/mechanic/profile"' in html
    assert MechanicProfile.objects.get(pk=mechanic.pk).phone == ""


def test_photo_over_the_limit_sent_without_the_script__the_page_in_its_language(
    mechanic, i18n, settings
):
    """The script checks a photo as it is chosen; a form sent without it and a photo over
    the limit is refused before the body is read, with the page's refusal in the mechanic's
    language (the form's page to go back to), not a line of English text."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    MechanicProfile.objects.filter(pk=mechanic.pk).update(language="he")
    photo = SimpleUploadedFile("p.jpg", b"x" * (settings.REQUEST_MAX_BYTES + 1), "image/jpeg")
    form = {"vin": "TEST123456789", "part_type": "Mirror", "original_or_analog": "original"}

    refused = signed_in(mechanic).post("/mechanic/orders/new", {**form, "photo": photo})

    assert refused.status_code == 413
    assert refused["Content-Type"].startswith("text/html")
    html = refused.content.decode()
    assert "לא נשמר" in html and "התמונה הזו גדולה מ־8 MiB: בחרו תמונה קטנה יותר." in html
    assert 'href="/mechanic/orders/new"' in html
    assert not Order.objects.exists()


def test_api_messages_for_the_script_translated(mechanic, i18n):
    import json

    MechanicProfile.objects.filter(pk=mechanic.pk).update(language="ru")
    html = signed_in(mechanic).get("/mechanic/").content.decode()

    messages = json.loads(re.search(r'id="api-messages"[^>]*>(.*?)</script>', html, re.S)[1])

    assert messages["network"] == "Ошибка сети. Проверьте подключение к интернету."
    assert messages["fields"]["text"] == "Комментарий"
    assert "undefined" not in html
