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

  const api = window.ConclaveApi.createClient({
    fetch: window.fetch.bind(window),
    document,
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

  async function refresh(element) {
    try {
      const html = await api.getText(location.pathname + location.search, {
        Accept: "text/html",
        "X-Fragment": element.dataset.refresh,
      });
      element.innerHTML = html;
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

  function orderId() {
    const element = document.querySelector("[data-order-id]");
    return element ? element.dataset.orderId : null;
  }

  const actions = {
    status: (target) => api.patch(`/api/mechanic/orders/${orderId()}/status`, { status: target.dataset.status }),
    "timer-start": () => api.post(`/api/mechanic/orders/${orderId()}/time/start`),
    "timer-stop": () => api.post("/api/mechanic/time/stop"),
    comment: (form) => api.post(`/api/orders/${orderId()}/comments`, { text: form.elements.text.value }),
    "time-entry": (form) =>
      api.post(`/api/orders/${orderId()}/time`, {
        started_at: new Date(form.elements.started_at.value).toISOString(),
        ended_at: new Date(form.elements.ended_at.value).toISOString(),
        notes: form.elements.notes.value,
      }),
  };

  async function act(target) {
    const name = target.dataset.action;
    if (name === "comment" && !target.elements.text.value.trim()) {
      show(target.dataset.emptyMessage, true);
      return;
    }
    target.setAttribute("aria-busy", "true");
    try {
      await actions[name](target);
      await Promise.all([...document.querySelectorAll("[data-refresh]")].map(refresh));
    } catch (error) {
      show(error.userMessage, true);
    } finally {
      target.removeAttribute("aria-busy");
    }
  }

  document.addEventListener("click", (event) => {
    const target = event.target.closest("button[data-action]");
    if (target) act(target);
  });
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-action]");
    if (form) {
      event.preventDefault();
      act(form);
    }
  });

  if (document.querySelector("[data-refresh]")) {
    setInterval(refreshAll, REFRESH_MS);
    window.addEventListener("focus", refreshAll);
  }
  setInterval(tick, 1000);
  tick();
})();
