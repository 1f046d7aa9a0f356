// The REST client: bearer token, JSON bodies, ETag/If-Match, Idempotency-Key on POST, and every error as
// an ApiError carrying the RFC 9457 problem (title, detail, field errors) the API answered.

const RETRYABLE = new Set([429, 503]);
const MAX_RETRIES = 4;
const MAX_RETRY_WAIT_MS = 10_000;

export class ApiError extends Error {
  constructor(status, problem) {
    const title = problem?.title || (status ? `HTTP ${status}` : "Network error");
    super(problem?.detail ? `${title}: ${problem.detail}` : title);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem ?? {};
  }

  get title() {
    return this.problem.title || this.message;
  }

  get detail() {
    return this.problem.detail || "";
  }

  /** ["title: detail", "body.field: message", ...] for showing to a person. */
  get lines() {
    const lines = [this.message];
    for (const error of this.problem.errors ?? []) {
      const where = (error.loc ?? []).filter((part) => part !== "body").join(".");
      lines.push(where ? `${where}: ${error.msg}` : error.msg);
    }
    return lines;
  }
}

/** Lines describing any error: an ApiError's problem, or the message of anything else. */
export function errorLines(error) {
  if (error instanceof ApiError) return error.lines;
  return [error?.message || String(error)];
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });
}

export class Api {
  /**
   * @param {() => string | null} token  the current bearer token
   * @param {(error: ApiError) => void} onUnauthorized  called on any 401 (the token expired or is bad)
   */
  constructor(token, onUnauthorized) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  headers(extra = {}) {
    const headers = { Accept: "application/json, application/problem+json", ...extra };
    const token = this.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    return headers;
  }

  /**
   * One request. Returns {data, etag, status}; throws ApiError with the problem document.
   * 429 and 503 are retried after their Retry-After (a POST keeps its Idempotency-Key, so a retry
   * never does the work twice).
   */
  async request(method, path, { body, ifMatch, query, signal } = {}) {
    const url = new URL(path, window.location.origin);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    }
    const extra = {};
    if (body !== undefined) extra["Content-Type"] = "application/json";
    if (ifMatch) extra["If-Match"] = ifMatch;
    if (method === "POST") extra["Idempotency-Key"] = crypto.randomUUID();
    for (let attempt = 0; ; attempt += 1) {
      let response;
      try {
        response = await fetch(url, {
          method,
          headers: this.headers(extra),
          body: body === undefined ? undefined : JSON.stringify(body),
          cache: "no-store",
          signal,
        });
      } catch (error) {
        if (error?.name === "AbortError") throw error;
        throw new ApiError(0, { title: "Cannot reach the server", detail: String(error?.message ?? error) });
      }
      if (RETRYABLE.has(response.status) && attempt < MAX_RETRIES) {
        const seconds = Number(response.headers.get("Retry-After") ?? "1");
        await sleep(Math.min(MAX_RETRY_WAIT_MS, Math.max(0.2, seconds) * 1000), signal);
        continue;
      }
      return this.#result(response);
    }
  }

  async #result(response) {
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = { title: `HTTP ${response.status}`, detail: text.slice(0, 200) };
      }
    }
    if (!response.ok) {
      const error = new ApiError(response.status, data);
      if (response.status === 401) this.onUnauthorized(error);
      throw error;
    }
    return { data, etag: response.headers.get("ETag"), status: response.status };
  }

  get(path, options) {
    return this.request("GET", path, options);
  }

  post(path, body, options = {}) {
    return this.request("POST", path, { ...options, body });
  }

  patch(path, body, options = {}) {
    return this.request("PATCH", path, { ...options, body });
  }

  delete(path, options) {
    return this.request("DELETE", path, options);
  }

  /** Every item of a paginated collection (`items` + `next_cursor`). */
  async all(path, query = {}) {
    const items = [];
    let cursor;
    do {
      const { data } = await this.get(path, { query: { ...query, cursor } });
      items.push(...data.items);
      cursor = data.next_cursor ?? undefined;
    } while (cursor);
    return items;
  }
}

/** `"3"` for version 3: what If-Match wants. */
export function etagOf(version) {
  return `"${version}"`;
}
