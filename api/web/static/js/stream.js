// The caller's change feed (`GET /v1/events`, Server-Sent Events) read with fetch() and a ReadableStream:
// EventSource cannot send the Authorization header the API requires. The parser follows the HTML
// standard's event-stream rules; `id:` becomes Last-Event-ID on reconnect, so nothing is missed.

const MAX_BACKOFF_MS = 30_000;

/** Incremental text/event-stream parser: feed() chunks, get onEvent({id, type, data}) per event. */
export class SseParser {
  constructor(onEvent, onRetry = () => {}) {
    this.onEvent = onEvent;
    this.onRetry = onRetry;
    this.buffer = "";
    this.data = [];
    this.type = "";
    this.lastEventId = "";
  }

  feed(text) {
    this.buffer += text;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      // A CR at the very end may be the first half of a CRLF split across chunks: wait for more.
      if (!match || (match[0] === "\r" && match.index === this.buffer.length - 1)) return;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      this.#line(line);
    }
  }

  #line(line) {
    if (line === "") {
      this.#dispatch();
      return;
    }
    if (line.startsWith(":")) return; // a comment (keep-alive)
    const colon = line.indexOf(":");
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "data") this.data.push(value);
    else if (name === "event") this.type = value;
    else if (name === "id" && !value.includes("\0")) this.lastEventId = value;
    else if (name === "retry" && /^\d+$/.test(value)) this.onRetry(Number(value));
  }

  #dispatch() {
    if (this.data.length) {
      this.onEvent({ id: this.lastEventId, type: this.type || "message", data: this.data.join("\n") });
    }
    this.data = [];
    this.type = "";
  }
}

/**
 * A self-reconnecting reader of the feed.
 * onEvent(event)            a parsed event whose `data` is the FeedEvent JSON
 * onStatus(state, info)     "connecting" | "live" | "reconnecting"; info.resumed tells whether the
 *                           stream picked up after a known event id (else the caller should reload)
 * onUnauthorized(error)     401: the token is no longer accepted (the stream stops)
 */
export class EventStream {
  constructor(api, { onEvent, onStatus, onUnauthorized }) {
    this.api = api;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.onUnauthorized = onUnauthorized;
    this.lastEventId = null;
    this.retryMs = 3000;
    this.controller = null;
  }

  start() {
    this.stop();
    this.controller = new AbortController();
    this.#run(this.controller.signal);
  }

  stop() {
    this.controller?.abort();
    this.controller = null;
  }

  async #run(signal) {
    let failures = 0;
    while (!signal.aborted) {
      this.onStatus(failures ? "reconnecting" : "connecting", {});
      try {
        const resumed = await this.#read(signal);
        failures = resumed ? 0 : failures + 1;
      } catch (error) {
        if (signal.aborted) return;
        if (error?.status === 401) {
          this.onUnauthorized(error);
          return;
        }
        failures += 1;
      }
      if (signal.aborted) return;
      this.onStatus("reconnecting", {});
      const wait = Math.min(MAX_BACKOFF_MS, this.retryMs * 2 ** Math.max(0, failures - 1));
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  /** One connection; true when it was established (so the next attempt is a plain reconnect). */
  async #read(signal) {
    const headers = this.api.headers({ Accept: "text/event-stream" });
    const resumed = this.lastEventId !== null;
    if (resumed) headers["Last-Event-ID"] = this.lastEventId;
    const response = await fetch("/v1/events", { headers, signal, cache: "no-store" });
    if (!response.ok) {
      const error = new Error(`the event stream answered ${response.status}`);
      error.status = response.status;
      throw error;
    }
    this.onStatus("live", { resumed });
    const parser = new SseParser(
      (event) => {
        if (event.id) this.lastEventId = event.id;
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        this.onEvent({ ...event, data });
      },
      (ms) => {
        this.retryMs = ms;
      },
    );
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return true;
      parser.feed(value);
    }
  }
}
