/*
 * The mechanic UI's API client (the rules of the front-end API client design):
 * - every call has a timeout (aborted: a network error);
 * - network errors, 5xx, 408 and 429 are retried up to 3 times after 1 s, 2 s and 4 s;
 *   no other 4xx is ever retried, and neither is a 503 "halted" (retrying cannot help);
 * - identical requests in flight at once share one network call;
 * - a write carries an Idempotency-Key, the same at each of its retries: a retry of a write
 *   whose answer was lost gets that answer again instead of writing twice;
 * - failures come back as errors with a friendly `userMessage`; 401 sends the browser to the
 *   login page; a 503 "halted" raises the halted banner with the reason.
 * Session cookie and CSRF token only: nothing is kept in localStorage.
 */
(function (root) {
  "use strict";

  const RETRY_DELAYS_MS = [1000, 2000, 4000];
  const DEFAULT_TIMEOUT_MS = 15000;

  const MESSAGES = {
    network: "Network error. Please check your internet connection.",
    401: "Your session has expired. Please log in again.",
    403: "You do not have permission to do this.",
    404: "The requested item was not found.",
    412: "It changed while this was being sent: look at it again.",
    429: "Too many requests. Please wait a moment and try again.",
    server: "Server error. Please try again later.",
    halted: "The system is halted; changes are refused until it is cleared.",
    other: "An error occurred. Please try again.",
  };

  function isRetryable(status) {
    // status 0: the request never got an answer (network error or timeout)
    return status === 0 || status === 408 || status === 429 || status >= 500;
  }

  function userMessage(status, body, messages) {
    const words = Object.assign({}, MESSAGES, messages || {});
    if (status === 0) return words.network;
    if (body && body.error === "halted") return words.halted;
    if (status === 400 && body && body.detail) return describe(body.detail, words.fields || {});
    if (status === 409 && body && body.detail) return String(body.detail);
    // A feature switched off since the page was drawn: the server names it.
    if (body && body.error === "feature_disabled" && body.detail) return String(body.detail);
    if (words[status]) return words[status];
    if (status >= 500) return words.server;
    return words.other;
  }

  // A 400's detail: {field: [problems]} with the field's label where the page gave one (a
  // field name is never shown raw), or a sentence.
  function describe(detail, labels) {
    if (typeof detail === "string") return detail;
    return Object.entries(detail)
      .map(([field, problems]) => {
        const text = [].concat(problems).join(" ");
        return labels[field] ? `${labels[field]}: ${text}` : text;
      })
      .join("; ");
  }

  // 128 random bits as hex: crypto.randomUUID exists only on https pages and localhost.
  function newIdempotencyKey() {
    const bytes = new Uint8Array(16);
    root.crypto.getRandomValues(bytes);
    return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  }

  function csrfToken(doc) {
    const input = doc && doc.querySelector && doc.querySelector("[name=csrfmiddlewaretoken]");
    if (input && input.value) return input.value;
    const match = doc && /(?:^|;\s*)(?:__Host-)?csrftoken=([^;]+)/.exec(doc.cookie || "");
    return match ? decodeURIComponent(match[1]) : "";
  }

  class ApiError extends Error {
    constructor(status, body, message) {
      super(message);
      this.status = status;
      this.body = body;
      this.userMessage = message;
    }
  }

  /*
   * options: fetch (the fetch function), sleep (ms => Promise), document, timeoutMs,
   * onUnauthorized(), onHalted(reason), messages (translated MESSAGES, and `fields`: the
   * labels of the fields a 400 may name).
   */
  function createClient(options) {
    const opts = Object.assign(
      {
        sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
        timeoutMs: DEFAULT_TIMEOUT_MS,
        onUnauthorized: () => {},
        onHalted: () => {},
      },
      options,
    );
    const inFlight = new Map();

    async function attempt(method, url, body, extraHeaders) {
      const controller = typeof AbortController === "function" ? new AbortController() : null;
      const timer = controller ? setTimeout(() => controller.abort(), opts.timeoutMs) : null;
      const headers = Object.assign({ Accept: "application/json" }, extraHeaders || {});
      const language = opts.document && opts.document.documentElement && opts.document.documentElement.lang;
      if (language) headers["Accept-Language"] = language; // the server's messages in the page's language
      let payload;
      if (body instanceof Object && typeof FormData === "function" && body instanceof FormData) {
        payload = body;
      } else if (body !== undefined) {
        headers["Content-Type"] = "application/json";
        payload = JSON.stringify(body);
      }
      if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = csrfToken(opts.document);
      try {
        const response = await opts.fetch(url, {
          method,
          headers,
          body: payload,
          credentials: "same-origin",
          signal: controller ? controller.signal : undefined,
        });
        const text = await response.text();
        let data = null;
        try {
          data = text ? JSON.parse(text) : null;
        } catch (error) {
          data = null; // not JSON: an HTML fragment, or an error page
        }
        const etag = response.headers && response.headers.get ? response.headers.get("ETag") : null;
        return { status: response.status, data, text, etag };
      } catch (error) {
        return { status: 0, data: null };
      } finally {
        if (timer) clearTimeout(timer);
      }
    }

    // `as`: what a success gives: the JSON (by default), "text", or "tagged" ({data, etag}).
    async function send(method, url, body, extraHeaders, as) {
      let headers = extraHeaders;
      if (method !== "GET" && method !== "HEAD") {
        headers = Object.assign({ "Idempotency-Key": newIdempotencyKey() }, extraHeaders || {});
      }
      let result;
      for (let retry = 0; ; retry += 1) {
        result = await attempt(method, url, body, headers);
        const halted = result.data && result.data.error === "halted";
        if (result.status >= 200 && result.status < 300) {
          if (as === "text") return result.text;
          return as === "tagged" ? { data: result.data, etag: result.etag } : result.data;
        }
        if (halted || !isRetryable(result.status) || retry >= RETRY_DELAYS_MS.length) break;
        await opts.sleep(RETRY_DELAYS_MS[retry]);
      }
      const message = userMessage(result.status, result.data, opts.messages);
      if (result.data && result.data.error === "halted") opts.onHalted(result.data.reason || "");
      else if (result.status === 401) opts.onUnauthorized();
      throw new ApiError(result.status, result.data, message);
    }

    function request(method, url, body, extraHeaders, as) {
      const key = [method, url, body === undefined ? "" : JSON.stringify(body),
        JSON.stringify(extraHeaders || {}), as || ""].join(" ");
      if (body instanceof Object && typeof FormData === "function" && body instanceof FormData) {
        return send(method, url, body, extraHeaders, as); // an upload is never merged
      }
      if (inFlight.has(key)) return inFlight.get(key);
      const pending = send(method, url, body, extraHeaders, as).finally(() => inFlight.delete(key));
      inFlight.set(key, pending);
      return pending;
    }

    return {
      request,
      get: (url) => request("GET", url),
      getText: (url, headers) => request("GET", url, undefined, headers, "text"),
      // The JSON with the answer's ETag (the version a later If-Match names).
      getTagged: (url) => request("GET", url, undefined, undefined, "tagged"),
      post: (url, body) => request("POST", url, body),
      patch: (url, body, headers) => request("PATCH", url, body, headers),
      delete: (url) => request("DELETE", url),
      inFlightCount: () => inFlight.size,
    };
  }

  const api = { createClient, isRetryable, userMessage, ApiError, RETRY_DELAYS_MS, MESSAGES };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else root.ConclaveApi = api;
})(typeof window !== "undefined" ? window : globalThis);
