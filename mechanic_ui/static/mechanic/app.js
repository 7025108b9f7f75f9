/*
 * The mechanic pages' behaviour: actions through the API client (api.js), lists and the
 * order refreshed on focus and every 30 s without a reload, the running timer ticking,
 * errors shown as friendly messages, the halted banner raised when a write is refused.
 */
(function () {
  "use strict";

  const REFRESH_MS = 30000;
  const toast = document.getElementById("toast");
  const banner = document.getElementById("halted-banner");

  const messages = JSON.parse(document.getElementById("api-messages").textContent);
  const api = window.ConclaveApi.createClient({
    fetch: window.fetch.bind(window),
    document,
    messages,
    onUnauthorized: () => {
      window.location.assign(`/mechanic/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    },
    onHalted: (reason) => {
      document.getElementById("halted-reason").textContent = reason;
      banner.hidden = false;
    },
  });

  function show(message, isError) {
    toast.textContent = message;
    toast.classList.toggle("toast-error", Boolean(isError));
    toast.hidden = false;
    clearTimeout(show.timer);
    show.timer = setTimeout(() => (toast.hidden = true), 6000);
  }

  // A form the mechanic is in the middle of: focused, or typed or chosen into.
  function inUse(form) {
    if (form.contains(document.activeElement)) return true;
    return [...form.elements].some((field) => {
      if (field.type === "file") return field.files.length > 0;
      if (field.type === "checkbox" || field.type === "radio") return field.checked !== field.defaultChecked;
      if (field.tagName === "SELECT") return [...field.options].some((o) => o.selected !== o.defaultSelected);
      return "defaultValue" in field && field.value !== field.defaultValue;
    });
  }

  // The fragment drawn afresh, with the forms in use kept as they are (what is typed, the
  // file chosen, the caret) and the folded sections open or closed as they were.
  function replaceKeepingForms(element, html, sent) {
    const fresh = document.createElement("template");
    fresh.innerHTML = html;
    const active = document.activeElement;
    let caret = null;
    try {
      caret = active && active.selectionStart !== undefined ? [active.selectionStart, active.selectionEnd] : null;
    } catch (error) {
      caret = null; // fields without a caret (number, date) throw on some browsers
    }
    element.querySelectorAll("form[data-action]").forEach((form) => {
      const twin = fresh.content.querySelector(`form[data-action="${form.dataset.action}"]`);
      if (!twin) return; // gone with the order's state (a finished order takes no time)
      const folded = form.closest("details");
      const twinFolded = twin.closest("details");
      if (folded && twinFolded) twinFolded.open = folded.open;
      if (form !== sent && inUse(form)) twin.replaceWith(form);
    });
    element.replaceChildren(fresh.content);
    if (active && active.isConnected && document.activeElement !== active) {
      active.focus();
      if (caret && caret[0] !== null) active.setSelectionRange(caret[0], caret[1]);
    }
  }

  // `sent`: the form whose action just succeeded, drawn afresh with what it changed.
  async function refresh(element, sent) {
    try {
      const html = await api.getText(location.pathname + location.search, {
        Accept: "text/html",
        "X-Fragment": element.dataset.refresh,
      });
      replaceKeepingForms(element, html, sent);
      tick();
    } catch (error) {
      show(error.userMessage, true);
    }
  }

  function refreshAll() {
    document.querySelectorAll("[data-refresh]").forEach(refresh);
  }

  function pad(n) {
    return String(n).padStart(2, "0");
  }

  function tick() {
    document.querySelectorAll("[data-started]").forEach((element) => {
      const seconds = Math.max(0, Math.floor((Date.now() - Date.parse(element.dataset.started)) / 1000));
      element.textContent = `${Math.floor(seconds / 3600)}:${pad(Math.floor((seconds % 3600) / 60))}:${pad(seconds % 60)}`;
    });
  }

  // A time typed by hand, read on the workshop's clock (clock.js); as typed if it is not one,
  // for the API to refuse in words.
  function typedTime(form, name) {
    const value = form.elements[name].value;
    return window.ConclaveClock.wallTimeToIso(value, form.dataset.timeZone) || value;
  }

  function orderId() {
    const element = document.querySelector("[data-order-id]");
    return element ? element.dataset.orderId : null;
  }

  // An amount typed with a decimal comma ("12,50", as many write it) as the API reads it.
  const DECIMAL_COMMA = /^\s*(\d+),(\d{1,2})\s*$/;

  // A form's fields as the API takes them: the ones left empty are not sent (the API's own
  // default, or its refusal naming the field).
  function filled(form, names) {
    const body = {};
    names.forEach((name) => {
      const field = form.elements.namedItem(name);
      if (!field || field.value.trim() === "") return;
      if (field.type === "number") body[name] = Number(field.value);
      else if (field.inputMode === "decimal") body[name] = field.value.replace(DECIMAL_COMMA, "$1.$2");
      else body[name] = field.value;
    });
    return body;
  }

  // A catalog part (its name, number and price are the catalog's) or a part named here.
  function itemBody(form) {
    const chosen = form.elements.namedItem("part_id");
    if (chosen && chosen.value) return Object.assign({ part_id: Number(chosen.value) }, filled(form, ["quantity"]));
    return filled(form, ["name", "part_number", "quantity", "unit_price"]);
  }

  // What a field showed when the page drew it (its default), and that default moved on.
  function shownValue(field) {
    return field.tagName === "SELECT"
      ? [...field.options].find((option) => option.defaultSelected)?.value
      : field.defaultValue;
  }

  function showAs(field, value) {
    if (field.tagName === "SELECT") [...field.options].forEach((option) => (option.defaultSelected = option.value === value));
    else field.defaultValue = value;
  }

  // The fields changed from what the page showed: a correction sends only those.
  function changed(form) {
    const body = {};
    [...form.elements].forEach((field) => {
      if (field.name && field.value !== shownValue(field)) body[field.name] = field.value;
    });
    return body;
  }

  // A correction is made against what the page showed. The order is read afresh: a field
  // changed here and elsewhere since (staff in the admin, another device) is told with its
  // value now and nothing is sent (saving again replaces it, knowingly); a field set
  // elsewhere to what was typed here is not sent again. Otherwise the changes go If-Match
  // that read, so a change in between is a 412, never overwritten.
  async function correct(form) {
    const url = `/api/orders/${orderId()}`;
    const body = changed(form);
    const { data: now, etag } = await api.getTagged(url);
    const current = (name) => String(now[name] ?? "");
    const edited = Object.keys(body).length; // none: the API's refusal says so
    Object.keys(body).forEach((name) => {
      if (name in now && current(name) === body[name]) delete body[name];
    });
    const raced = Object.keys(body).filter(
      (name) => name in now && current(name) !== shownValue(form.elements.namedItem(name)),
    );
    if (raced.length) {
      // The fields not edited here show their value now; the edited ones keep what was typed.
      [...form.elements].forEach((field) => {
        if (!field.name || !(field.name in now) || field.name in body) return;
        field.value = current(field.name);
        showAs(field, current(field.name));
      });
      const told = raced.map((name) => {
        const field = form.elements.namedItem(name);
        const value = current(name);
        const option = field.tagName === "SELECT" ? [...field.options].find((o) => o.value === value) : null;
        showAs(field, value);
        // Functions, not strings, as replacements: a value's "$&" is text, not a pattern.
        return messages.raced
          .replace("%(field)s", () => messages.fields[name] || name)
          .replace("%(value)s", () => (option ? option.text : value));
      });
      throw new window.ConclaveApi.ApiError(409, null, told.join(" "));
    }
    if (edited && !Object.keys(body).length) return now; // set elsewhere as typed here
    return api.patch(url, body, etag ? { "If-Match": etag } : undefined);
  }

  function photoBody(form) {
    const body = new FormData();
    body.append("photo", form.elements.namedItem("photo").files[0]);
    return body;
  }

  const actions = {
    status: (target) => api.patch(`/api/mechanic/orders/${orderId()}/status`, { status: target.dataset.status }),
    "timer-start": () => api.post(`/api/mechanic/orders/${orderId()}/time/start`),
    "timer-stop": () => api.post("/api/mechanic/time/stop"),
    comment: (form) => api.post(`/api/orders/${orderId()}/comments`, { text: form.elements.text.value }),
    correct,
    item: (form) => api.post(`/api/orders/${orderId()}/items`, itemBody(form)),
    work: (form) =>
      api.post(`/api/orders/${orderId()}/works`, filled(form, ["name", "description", "price", "estimated_minutes"])),
    photo: (form) => api.post(`/api/orders/${orderId()}/photos`, photoBody(form)),
    "item-remove": (target) => api.delete(`/api/orders/${orderId()}/items/${target.dataset.id}`),
    "work-remove": (target) => api.delete(`/api/orders/${orderId()}/works/${target.dataset.id}`),
    "photo-remove": (target) => api.delete(`/api/orders/${orderId()}/photos/${target.dataset.id}`),
    "time-entry": (form) =>
      api.post(`/api/orders/${orderId()}/time`, {
        started_at: typedTime(form, "started_at"),
        ended_at: typedTime(form, "ended_at"),
        notes: form.elements.notes.value,
      }),
  };

  async function act(target) {
    const name = target.dataset.action;
    // A move that cannot be undone (cancelling) is asked about first.
    if (target.dataset.confirm && !window.confirm(target.dataset.confirm)) return;
    if (name === "comment" && !target.elements.text.value.trim()) {
      show(target.dataset.emptyMessage, true);
      return;
    }
    target.setAttribute("aria-busy", "true");
    try {
      await actions[name](target);
      // Done with: drawn afresh by the refresh below (emptied, or showing what it changed).
      const sent = target instanceof HTMLFormElement ? target : null;
      await Promise.all([...document.querySelectorAll("[data-refresh]")].map((element) => refresh(element, sent)));
    } catch (error) {
      show(error.userMessage, true);
      // The order or the timer may have moved on since the page was drawn (staff, another
      // tab): the page shows them as they are now. A refused form stays as typed (the
      // refresh keeps the forms in use), unless the order no longer takes it (finished).
      if (error.status === 409 || error.status === 412) refreshAll();
    } finally {
      target.removeAttribute("aria-busy");
    }
  }

  document.addEventListener("click", (event) => {
    const target = event.target.closest("button[data-action]");
    if (target) act(target);
  });
  // A photo over the limit is refused as it is chosen, not after the whole form's upload.
  document.addEventListener("change", (event) => {
    const photo = event.target.closest("input[type=file][data-max-bytes]");
    if (!photo) return;
    const file = photo.files[0];
    const tooBig = file && file.size > Number(photo.dataset.maxBytes);
    photo.setCustomValidity(tooBig ? photo.dataset.tooBig : "");
    if (tooBig) photo.reportValidity();
  });
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-action]");
    if (form) {
      event.preventDefault();
      act(form);
    }
  });

  // The new-order form, one step at a time (without JavaScript every step shows at once).
  const wizard = document.getElementById("order-form");
  if (wizard) {
    const steps = [...wizard.querySelectorAll(".step")];
    const nav = wizard.querySelector(".wizard-nav");
    let current = 0;
    const showStep = (index) => {
      current = Math.max(0, Math.min(index, steps.length - 1));
      steps.forEach((step, n) => (step.hidden = n !== current));
      nav.querySelector("[data-wizard=back]").hidden = current === 0;
      nav.querySelector("[data-wizard=next]").hidden = current === steps.length - 1;
      if (current === steps.length - 1) review();
      const first = steps[current].querySelector("input, select");
      if (first) first.focus();
    };
    const review = () => {
      const list = document.getElementById("review");
      list.replaceChildren();
      steps.slice(0, -1).forEach((step) => {
        step.querySelectorAll("input, select").forEach((field) => {
          let value = field.value;
          if (field.type === "checkbox" || field.type === "radio") {
            if (!field.checked) return;
            value = field.closest("label").textContent.trim();
          } else if (field.type === "file") {
            value = field.files.length ? field.files[0].name : "";
          } else if (field.tagName === "SELECT") {
            value = field.value ? field.selectedOptions[0].textContent.trim() : "";
          }
          if (!value || field.type === "number") return;
          const label = step.querySelector(`label[for="${field.id}"]`) || step.querySelector("legend");
          const term = document.createElement("dt");
          term.textContent = label.textContent.trim();
          const detail = document.createElement("dd");
          detail.textContent = value;
          list.append(term, detail);
        });
      });
    };
    const filterParts = () => {
      const category = document.getElementById("category");
      wizard.querySelectorAll("[data-category]").forEach((choice) => {
        choice.hidden = Boolean(category && category.value) && choice.dataset.category !== category.value;
      });
    };
    const category = document.getElementById("category");
    if (category) category.addEventListener("change", filterParts);
    filterParts();
    nav.hidden = false;
    nav.addEventListener("click", (event) => {
      const button = event.target.closest("[data-wizard]");
      if (!button) return;
      if (button.dataset.wizard === "back") return showStep(current - 1);
      const invalid = [...steps[current].querySelectorAll("input, select")].find((f) => !f.checkValidity());
      if (invalid) return invalid.reportValidity();
      showStep(current + 1);
    });
    showStep(document.getElementById("order-errors") ? steps.length - 1 : 0);
  }

  if (document.querySelector("[data-refresh]")) {
    setInterval(refreshAll, REFRESH_MS);
    window.addEventListener("focus", refreshAll);
  }
  setInterval(tick, 1000);
  tick();
})();
