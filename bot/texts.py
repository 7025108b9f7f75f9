"""Everything the ordering bot says, in English, Hebrew and Russian. Values from users and the
catalog are escaped by the caller (Telegram's HTML parse mode); button labels are plain text."""

from typing import Any

PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "choose_language": "Choose your language:",
        "welcome": (
            "Hello, {name}!\n/order: order a part\n/orders: your recent orders\n"
            "/language: change the language\n/cancel: drop the order you are making"
        ),
        "not_linked": (
            "This chat is not linked to a mechanic of the workshop. Ask the workshop's staff "
            "to add chat id <code>{chat_id}</code> to your mechanic profile, then send /start."
        ),
        "help": "/order: order a part\n/orders: your recent orders\n/language: change the language",
        "expired": "That order was left unfinished for too long and has been dropped. /order starts again.",
        "cancelled": "The order was dropped. /order starts a new one.",
        "nothing_to_cancel": "There is no order in the making. /order starts one.",
        "ask_category": "Which category is the part in?",
        "no_categories": "The catalog is empty. Type the part you need:",
        "ask_parts": "Pick the parts you need (tap again to remove one), then Done.",
        "parts_chosen": "Chosen: {parts}",
        "pick_a_part": "Pick at least one part, or type one.",
        "ask_part_manual": "Type the part you need (up to 100 characters):",
        "bad_part": "A part name is 1 to 100 characters.",
        "bad_part_characters": (
            "A part name cannot hold control characters or text direction overrides."
        ),
        "ask_vin": "Send the car's VIN (6 to 17 letters and digits):",
        "bad_vin": (
            "That is not a VIN: 6 to 17 letters and digits, and a 17-character VIN has no I, O "
            "or Q. Send it again:"
        ),
        "ask_car_number": "Send the car number (digits, letters, hyphens), or Skip:",
        "bad_car_number": "That is not a car number: up to 20 digits, letters and hyphens. Send it again:",
        "ask_origin": "Original part or analog?",
        "ask_photo": "Send a photo of the part or the car if it helps, or Skip.",
        "photo_too_big": "That photo is too big (at most {mib} MiB). Send a smaller one, or Skip.",
        "photo_failed": "The photo could not be attached ({reason}). Send another one, or Skip.",
        "summary": (
            "<b>Your order</b>\nParts: {parts}\nCategory: {category}\nVIN: <code>{vin}</code>\n"
            "{car_number_line}Original or analog: {origin}\nPhoto: {photo}\n\nSend it?"
        ),
        "car_number_line": "Car number: <code>{car_number}</code>\n",
        "created": "Order #{id} is in. You will hear here when it is ready.",
        "failed": "The order could not be made: {reason}",
        "catalog_off": "The parts catalog has been switched off: the parts picked from it were taken out of this order.",
        "halted": "The workshop's system is paused; nothing was ordered. Try again later.",
        "first_step": "This is the first step. /cancel drops the order.",
        "stale_button": "That button belongs to an earlier step.",
        "type_text": "Please answer with text.",
        "no_orders": "You have no orders yet. /order makes one.",
        "orders": "<b>Your recent orders</b>\n{lines}",
        "yes": "yes",
        "no": "no",
        "original": "Original",
        "analog": "Analog",
        "back": "« Back",
        "skip": "Skip",
        "done": "Done",
        "type_part": "✍ Type a part",
        "confirm": "✅ Send the order",
        "cancel": "✖ Cancel",
    },
    "he": {
        "choose_language": "בחר שפה:",
        "welcome": (
            "שלום, {name}!\n/order: הזמנת חלק\n/orders: ההזמנות האחרונות שלך\n"
            "/language: שינוי שפה\n/cancel: ביטול ההזמנה שבהכנה"
        ),
        "not_linked": (
            "הצ'אט הזה אינו מקושר למכונאי של המוסך. בקש מצוות המוסך להוסיף את מזהה הצ'אט "
            "<code>{chat_id}</code> לפרופיל המכונאי שלך, ואז שלח /start."
        ),
        "help": "/order: הזמנת חלק\n/orders: ההזמנות האחרונות שלך\n/language: שינוי שפה",
        "expired": "ההזמנה נשארה לא גמורה זמן רב מדי ובוטלה. /order מתחיל מחדש.",
        "cancelled": "ההזמנה בוטלה. /order מתחיל הזמנה חדשה.",
        "nothing_to_cancel": "אין הזמנה בהכנה. /order מתחיל אחת.",
        "ask_category": "באיזו קטגוריה החלק?",
        "no_categories": "הקטלוג ריק. הקלד את החלק שאתה צריך:",
        "ask_parts": "בחר את החלקים שאתה צריך (לחיצה נוספת מסירה), ואז סיום.",
        "parts_chosen": "נבחרו: {parts}",
        "pick_a_part": "בחר לפחות חלק אחד, או הקלד אחד.",
        "ask_part_manual": "הקלד את החלק שאתה צריך (עד 100 תווים):",
        "bad_part": "שם חלק הוא 1 עד 100 תווים.",
        "bad_part_characters": "שם חלק אינו יכול להכיל תווי בקרה או תווים ההופכים את כיוון הטקסט.",
        "ask_vin": "שלח את מספר השלדה (VIN) של הרכב (6 עד 17 אותיות וספרות):",
        "bad_vin": "זה אינו VIN: 6 עד 17 אותיות וספרות, ו-VIN של 17 תווים אינו מכיל I, O או Q. שלח שוב:",
        "ask_car_number": "שלח את מספר הרכב (ספרות, אותיות, מקפים), או דלג:",
        "bad_car_number": "זה אינו מספר רכב: עד 20 ספרות, אותיות ומקפים. שלח שוב:",
        "ask_origin": "חלק מקורי או תחליפי?",
        "ask_photo": "שלח תמונה של החלק או של הרכב אם זה עוזר, או דלג.",
        "photo_too_big": "התמונה גדולה מדי (עד {mib} MiB). שלח קטנה יותר, או דלג.",
        "photo_failed": "לא ניתן לצרף את התמונה ({reason}). שלח אחרת, או דלג.",
        "summary": (
            "<b>ההזמנה שלך</b>\nחלקים: {parts}\nקטגוריה: {category}\nVIN: <code>{vin}</code>\n"
            "{car_number_line}מקורי או תחליפי: {origin}\nתמונה: {photo}\n\nלשלוח?"
        ),
        "car_number_line": "מספר רכב: <code>{car_number}</code>\n",
        "created": "הזמנה #{id} התקבלה. תקבל כאן הודעה כשתהיה מוכנה.",
        "failed": "לא ניתן היה ליצור את ההזמנה: {reason}",
        "catalog_off": "קטלוג החלקים כובה: החלקים שנבחרו ממנו הוסרו מההזמנה הזו.",
        "halted": "מערכת המוסך מושהית; לא הוזמן דבר. נסה שוב מאוחר יותר.",
        "first_step": "זה השלב הראשון. /cancel מבטל את ההזמנה.",
        "stale_button": "הכפתור הזה שייך לשלב קודם.",
        "type_text": "אנא ענה בטקסט.",
        "no_orders": "אין לך הזמנות עדיין. /order יוצר אחת.",
        "orders": "<b>ההזמנות האחרונות שלך</b>\n{lines}",
        "yes": "כן",
        "no": "לא",
        "original": "מקורי",
        "analog": "תחליפי",
        "back": "» חזרה",
        "skip": "דלג",
        "done": "סיום",
        "type_part": "✍ הקלד חלק",
        "confirm": "✅ שלח את ההזמנה",
        "cancel": "✖ ביטול",
    },
    "ru": {
        "choose_language": "Выберите язык:",
        "welcome": (
            "Здравствуйте, {name}!\n/order: заказать деталь\n/orders: ваши последние заказы\n"
            "/language: сменить язык\n/cancel: отменить начатый заказ"
        ),
        "not_linked": (
            "Этот чат не привязан к механику мастерской. Попросите сотрудников мастерской "
            "добавить chat id <code>{chat_id}</code> в ваш профиль механика, затем отправьте /start."
        ),
        "help": "/order: заказать деталь\n/orders: ваши последние заказы\n/language: сменить язык",
        "expired": "Заказ слишком долго оставался незаконченным и отменён. /order начнёт заново.",
        "cancelled": "Заказ отменён. /order начнёт новый.",
        "nothing_to_cancel": "Начатого заказа нет. /order начнёт новый.",
        "ask_category": "В какой категории деталь?",
        "no_categories": "Каталог пуст. Напишите, какая деталь нужна:",
        "ask_parts": "Выберите нужные детали (повторное нажатие убирает), затем «Готово».",
        "parts_chosen": "Выбрано: {parts}",
        "pick_a_part": "Выберите хотя бы одну деталь или напишите её.",
        "ask_part_manual": "Напишите, какая деталь нужна (до 100 символов):",
        "bad_part": "Название детали: от 1 до 100 символов.",
        "bad_part_characters": (
            "Название детали не может содержать управляющие символы или символы смены "
            "направления текста."
        ),
        "ask_vin": "Отправьте VIN автомобиля (6–17 латинских букв и цифр):",
        "bad_vin": (
            "Это не VIN: 6–17 латинских букв и цифр, а в VIN из 17 знаков нет I, O и Q. "
            "Отправьте ещё раз:"
        ),
        "ask_car_number": "Отправьте номер автомобиля (цифры, буквы, дефисы) или «Пропустить»:",
        "bad_car_number": "Это не номер автомобиля: до 20 цифр, букв и дефисов. Отправьте ещё раз:",
        "ask_origin": "Оригинал или аналог?",
        "ask_photo": "Отправьте фото детали или автомобиля, если это поможет, или «Пропустить».",
        "photo_too_big": "Фото слишком большое (не более {mib} МиБ). Отправьте меньше или «Пропустить».",
        "photo_failed": "Не удалось приложить фото ({reason}). Отправьте другое или «Пропустить».",
        "summary": (
            "<b>Ваш заказ</b>\nДетали: {parts}\nКатегория: {category}\nVIN: <code>{vin}</code>\n"
            "{car_number_line}Оригинал или аналог: {origin}\nФото: {photo}\n\nОтправить?"
        ),
        "car_number_line": "Номер автомобиля: <code>{car_number}</code>\n",
        "created": "Заказ #{id} принят. Здесь появится сообщение, когда он будет готов.",
        "failed": "Заказ не создан: {reason}",
        "catalog_off": "Каталог деталей отключён: выбранные из него детали убраны из этого заказа.",
        "halted": "Система мастерской приостановлена; ничего не заказано. Попробуйте позже.",
        "first_step": "Это первый шаг. /cancel отменяет заказ.",
        "stale_button": "Эта кнопка относится к прошлому шагу.",
        "type_text": "Пожалуйста, ответьте текстом.",
        "no_orders": "У вас ещё нет заказов. /order создаст заказ.",
        "orders": "<b>Ваши последние заказы</b>\n{lines}",
        "yes": "да",
        "no": "нет",
        "original": "Оригинал",
        "analog": "Аналог",
        "back": "« Назад",
        "skip": "Пропустить",
        "done": "Готово",
        "type_part": "✍ Написать деталь",
        "confirm": "✅ Отправить заказ",
        "cancel": "✖ Отмена",
    },
}

LANGUAGE_BUTTONS = [("en", "English"), ("he", "עברית"), ("ru", "Русский")]


def say(language: str, key: str, **values: Any) -> str:
    phrase = PHRASES.get(language, PHRASES["en"])[key]
    return phrase.format(**values) if values else phrase
