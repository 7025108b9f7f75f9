// The mechanic UI's API client: which answers are retried, after which delays, and
// de-duplication of identical requests in flight. Run by `make test` (node --test).
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { createClient, isRetryable, userMessage, RETRY_DELAYS_MS } = require(
  path.join(__dirname, "../../mechanic_ui/static/mechanic/api.js"),
);

function response(status, body) {
  return { status, text: async () => (body === undefined ? "" : JSON.stringify(body)) };
}

// A fetch answering from a script of statuses (0: a network error), recording each call.
function scripted(statuses, body = { ok: true }) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, init });
    const status = statuses.length > 1 ? statuses.shift() : statuses[0];
    if (status === 0) throw new TypeError("Failed to fetch");
    return response(status, status >= 400 ? { error: "x", detail: "bad" } : body);
  };
  return { fetch, calls };
}

function client(fetch, extra = {}) {
  const slept = [];
  const api = createClient({
    fetch,
    sleep: async (ms) => slept.push(ms),
    document: { cookie: "csrftoken=tok123" },
    ...extra,
  });
  return { api, slept };
}

test("retryable: network errors, 408, 429 and 5xx; no other status", () => {
  for (const status of [0, 408, 429, 500, 502, 503, 504]) assert.equal(isRetryable(status), true, status);
  for (const status of [400, 401, 403, 404, 405, 409, 413, 422]) assert.equal(isRetryable(status), false, status);
});

test("5xx then success: retried after 1 s and 2 s", async () => {
  const { fetch, calls } = scripted([500, 502, 200]);
  const { api, slept } = client(fetch);

  assert.deepEqual(await api.get("/api/orders"), { ok: true });
  assert.equal(calls.length, 3);
  assert.deepEqual(slept, [1000, 2000]);
});

test("always failing: three retries after 1, 2 and 4 s, then the friendly error", async () => {
  const { fetch, calls } = scripted([503]);
  const { api, slept } = client(fetch);

  await assert.rejects(api.get("/api/orders"), (error) => {
    assert.equal(error.status, 503);
    assert.equal(error.userMessage, "Server error. Please try again later.");
    return true;
  });
  assert.equal(calls.length, 4);
  assert.deepEqual(slept, RETRY_DELAYS_MS);
  assert.deepEqual(RETRY_DELAYS_MS, [1000, 2000, 4000]);
});

test("network error and 429 and 408 are retried", async () => {
  for (const status of [0, 429, 408]) {
    const { fetch, calls } = scripted([status, 200]);
    const { api, slept } = client(fetch);
    await api.post("/api/orders/1/comments", { text: "hi" });
    assert.equal(calls.length, 2, String(status));
    assert.deepEqual(slept, [1000]);
  }
});

test("4xx other than 408 and 429: never retried", async () => {
  for (const status of [400, 403, 404, 409]) {
    const { fetch, calls } = scripted([status, 200]);
    const { api, slept } = client(fetch);
    await assert.rejects(api.get("/api/orders/9"));
    assert.equal(calls.length, 1, String(status));
    assert.deepEqual(slept, []);
  }
});

test("401: not retried, and the page goes back to the login", async () => {
  let sentToLogin = 0;
  const { fetch, calls } = scripted([401]);
  const { api } = client(fetch, { onUnauthorized: () => (sentToLogin += 1) });

  await assert.rejects(api.get("/api/orders"), /session has expired/);
  assert.equal(calls.length, 1);
  assert.equal(sentToLogin, 1);
});

test("503 halted: not retried, the halted banner gets the reason", async () => {
  const reasons = [];
  const fetch = async () => response(503, { error: "halted", reason: "integrity check failed" });
  const { api, slept } = client(fetch, { onHalted: (reason) => reasons.push(reason) });

  await assert.rejects(api.patch("/api/mechanic/orders/1/status", { status: "ready" }), /halted/);
  assert.deepEqual(slept, []);
  assert.deepEqual(reasons, ["integrity check failed"]);
});

test("identical requests in flight share one call; different ones do not", async () => {
  let release;
  const gate = new Promise((resolve) => (release = resolve));
  const calls = [];
  const fetch = async (url) => {
    calls.push(url);
    await gate;
    return response(200, { url });
  };
  const { api } = client(fetch);

  const first = api.get("/api/orders?status=new");
  const second = api.get("/api/orders?status=new");
  const other = api.get("/api/orders?status=ready");
  assert.equal(api.inFlightCount(), 2);
  release();

  assert.deepEqual(await first, await second);
  await other;
  assert.deepEqual(calls, ["/api/orders?status=new", "/api/orders?status=ready"]);
  assert.equal(api.inFlightCount(), 0);
  await api.get("/api/orders?status=new"); // once settled, asked again
  assert.equal(calls.length, 3);
});

test("writes carry the CSRF token and JSON; reads do not carry the token", async () => {
  const { fetch, calls } = scripted([200]);
  const { api } = client(fetch);

  await api.post("/api/orders/1/comments", { text: "hi" });
  await api.get("/api/orders");

  assert.equal(calls[0].init.headers["X-CSRFToken"], "tok123");
  assert.equal(calls[0].init.headers["Content-Type"], "application/json");
  assert.equal(calls[0].init.body, '{"text":"hi"}');
  assert.equal(calls[0].init.credentials, "same-origin");
  assert.equal(calls[1].init.headers["X-CSRFToken"], undefined);
});

test("requests ask for the server's messages in the page's language", async () => {
  const { fetch, calls } = scripted([200]);
  const { api } = client(fetch, { document: { cookie: "", documentElement: { lang: "he" } } });
  const { api: bare } = client(fetch);

  await api.get("/api/mechanic/time/active");
  await bare.get("/api/mechanic/time/active");

  assert.equal(calls[0].init.headers["Accept-Language"], "he");
  assert.equal(calls[1].init.headers["Accept-Language"], undefined);
});

test("friendly messages: field errors under the page's labels, conflicts told as the server says", () => {
  const detail = { detail: { text: ["1 to 2000 characters."], notes: ["Too long."] } };
  assert.equal(userMessage(400, detail), "1 to 2000 characters.; Too long.");
  assert.equal(
    userMessage(400, detail, { fields: { text: "Комментарий" } }),
    "Комментарий: 1 to 2000 characters.; Too long.",
  );
  assert.equal(userMessage(409, { detail: "An order that is new cannot become ready." }), "An order that is new cannot become ready.");
  assert.equal(userMessage(404, {}), "The requested item was not found.");
  assert.equal(userMessage(0, null), "Network error. Please check your internet connection.");
  assert.equal(userMessage(418, {}), "An error occurred. Please try again.");
  assert.equal(userMessage(404, {}, { 404: "Не найдено." }), "Не найдено.");
  // A feature switched off since the page was drawn: the server says which, in the
  // mechanic's language; "not found" would send them looking for the order.
  const off = { error: "feature_disabled", detail: "The parts catalog has been switched off: name the part instead." };
  assert.equal(userMessage(404, off, { 404: "Не найдено." }), off.detail);
});

test("a request that never answers times out and counts as a network error", async () => {
  const fetch = (url, init) =>
    new Promise((resolve, reject) => init.signal.addEventListener("abort", () => reject(new Error("aborted"))));
  const { api, slept } = client(fetch, { timeoutMs: 20 });

  await assert.rejects(api.get("/api/orders"), /Network error/);
  assert.deepEqual(slept, [1000, 2000, 4000]);
});

test("a write's retries carry its Idempotency-Key; another write gets another key", async () => {
  const { fetch, calls } = scripted([0, 502, 201]);
  const { api } = client(fetch);

  await api.post("/api/orders/1/comments", { text: "pads fitted" });
  await api.post("/api/orders/1/comments", { text: "pads fitted" });

  const keys = calls.map((call) => call.init.headers["Idempotency-Key"]);
  assert.equal(keys.length, 4);
  assert.match(keys[0], /^[0-9a-f]{32}$/);
  assert.deepEqual(keys.slice(0, 3), [keys[0], keys[0], keys[0]]);
  assert.notEqual(keys[3], keys[0]);
});

test("a read carries no Idempotency-Key", async () => {
  const { fetch, calls } = scripted([200]);
  const { api } = client(fetch);

  await api.get("/api/orders");

  assert.equal("Idempotency-Key" in calls[0].init.headers, false);
});

test("a tagged read gives the answer's ETag; a patch sends the headers given", async () => {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, init });
    const tagged = response(200, { vin: "TEST123456789" });
    tagged.headers = { get: (name) => (name === "ETag" ? '"v1"' : null) };
    return tagged;
  };
  const { api } = client(fetch);

  const read = await api.getTagged("/api/orders/1");
  await api.patch("/api/orders/1", { vin: "TEST123456780" }, { "If-Match": read.etag });
  const plain = await api.get("/api/orders/1");

  assert.deepEqual(read, { data: { vin: "TEST123456789" }, etag: '"v1"' });
  assert.equal(calls[1].init.headers["If-Match"], '"v1"');
  assert.deepEqual(plain, { vin: "TEST123456789" });
});

test("a 412 told in the page's words", () => {
  assert.equal(userMessage(412, { error: "precondition_failed" }, { 412: "Изменилось." }), "Изменилось.");
  assert.equal(userMessage(412, null), "It changed while this was being sent: look at it again.");
});
