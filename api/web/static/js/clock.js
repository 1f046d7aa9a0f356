// The engine's clock. With `todo-engine up --dev-clock`, GET /v1/dev/clock answers and time can be moved
// forward, so a person can watch a month of a series in a minute. Without it (404) the control is hidden.
//
// An advance walks through the caller's series: it stops at each next occurrence so the workflow's
// timer fires on time (a single long jump would find those dates missed and skip them), waits for the
// series to move on, then goes on to the target.

import { errorLines } from "./api.js";
import { field, h, select } from "./dom.js";
import { toast } from "./toasts.js";
import { browserZone, formatInstant, formatSeconds } from "./times.js";

const MAX_STEPS = 1000;
const SETTLE_TIMEOUT_MS = 4000;
const SETTLE_POLL_MS = 100;
const PRESETS = [
  ["+1 hour", 3600],
  ["+1 day", 86400],
  ["+1 week", 7 * 86400],
];
const UNITS = [
  ["60", "minutes"],
  ["3600", "hours"],
  ["86400", "days"],
  ["604800", "weeks"],
];

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function createClock(ctx) {
  const header = document.getElementById("clock");
  const nowEl = document.getElementById("clock-now");
  const offsetEl = document.getElementById("clock-offset");
  const panel = document.getElementById("dev-clock");
  const status = h("p", { class: "clock-status", role: "status", "data-testid": "clock-status" });
  const amount = h("input", { type: "number", name: "amount", min: 0, step: "any", value: 2 });
  const unit = select("unit", UNITS, "86400");
  const stop = h("button", { type: "button", class: "secondary", hidden: true }, "Stop");
  const presets = PRESETS.map(([label, seconds]) =>
    h("button", { type: "button", onclick: () => advance(seconds) }, label),
  );
  const custom = h(
    "form",
    { class: "row", novalidate: true, "aria-label": "Custom advance" },
    field("Amount", amount),
    field("Unit", unit),
    h("button", { type: "submit" }, "Advance"),
  );
  custom.addEventListener("submit", (event) => {
    event.preventDefault();
    const seconds = Number(amount.value) * Number(unit.value);
    if (Number.isFinite(seconds) && seconds > 0) advance(seconds);
  });
  stop.addEventListener("click", () => {
    stopRequested = true;
  });
  panel.append(
    h("h2", { id: "dev-clock-heading" }, "Dev clock"),
    h("p", { class: "hint" }, "Move the engine's time forward: reminders and series fire as if the time had passed."),
    h("div", { class: "actions" }, presets, stop),
    custom,
    status,
  );

  let busy = false;
  let stopRequested = false;
  let timer = null;

  function now() {
    const clock = ctx.state.clock;
    return clock ? clock.nowMs + (performance.now() - clock.readAt) : Date.now();
  }

  function adopt(data) {
    ctx.state.clock = { nowMs: Date.parse(data.now), offset: data.offset_seconds, readAt: performance.now() };
    render();
  }

  function render() {
    const on = ctx.state.clock !== null;
    header.hidden = !on;
    panel.hidden = !on;
    if (!on) return;
    const ms = now();
    nowEl.dateTime = new Date(ms).toISOString();
    nowEl.textContent = `${formatInstant(ms, browserZone(), { seconds: true })}`;
    offsetEl.textContent = ctx.state.clock.offset ? `(+${formatSeconds(ctx.state.clock.offset)})` : "";
  }

  /** Is the dev clock on? Reads it (404 means no: hide the control). */
  async function detect() {
    try {
      adopt((await ctx.api.get("/v1/dev/clock")).data);
      timer ??= setInterval(render, 1000);
    } catch (error) {
      ctx.state.clock = null;
      render();
      if (error?.status !== 404) throw error;
    }
  }

  async function jump(seconds) {
    const { data } = await ctx.api.post("/v1/dev/clock:advance", { seconds: Math.max(0, seconds) });
    adopt(data);
    return Date.parse(data.now);
  }

  async function upcomingOccurrence(after, until) {
    const series = await ctx.api.all("/v1/series", { limit: 200 });
    const due = series
      .filter((s) => s.status === "running" && s.next_occurrence_at)
      .map((s) => ({ series: s, at: Date.parse(s.next_occurrence_at) }))
      .filter(({ at }) => at > after && at <= until);
    if (!due.length) return null;
    const at = Math.min(...due.map((d) => d.at));
    return { at, series: due.filter((d) => d.at - at < 1000).map((d) => d.series) };
  }

  /** Wait until each series moved past the occurrence that just fell due (bounded). */
  async function settle(batch) {
    const deadline = performance.now() + SETTLE_TIMEOUT_MS;
    const pending = new Map(batch.map((s) => [s.id, s]));
    while (pending.size && performance.now() < deadline) {
      for (const [id, before] of pending) {
        const { data } = await ctx.api.get(`/v1/series/${id}`, { query: { upcoming: 0 } });
        if (
          data.status !== "running" ||
          data.next_occurrence_index !== before.next_occurrence_index ||
          data.next_occurrence_at !== before.next_occurrence_at
        ) {
          pending.delete(id);
        }
      }
      if (pending.size) await pause(SETTLE_POLL_MS);
    }
  }

  async function advance(seconds) {
    if (busy) return;
    busy = true;
    stopRequested = false;
    for (const button of presets) button.disabled = true;
    stop.hidden = false;
    let occurrences = 0;
    try {
      await detect();
      let at = now();
      const target = at + seconds * 1000;
      status.textContent = `Advancing ${formatSeconds(seconds)}…`;
      for (let steps = 0; steps < MAX_STEPS && !stopRequested; steps += 1) {
        const next = await upcomingOccurrence(at, target);
        if (!next) break;
        at = await jump((next.at - at) / 1000 + 1);
        await settle(next.series);
        occurrences += next.series.length;
        status.textContent = `Advancing… ${formatInstant(at, browserZone())}, ${occurrences} occurrence(s) so far`;
      }
      if (!stopRequested && target > at) at = await jump((target - at) / 1000);
      status.textContent =
        `${stopRequested ? "Stopped" : "Advanced"} to ${formatInstant(at, browserZone())}` +
        (occurrences ? `; ${occurrences} occurrence(s) fell due on the way.` : ".");
    } catch (error) {
      status.textContent = "The clock could not be advanced.";
      toast("The clock could not be advanced", { kind: "error", body: errorLines(error) });
    } finally {
      busy = false;
      for (const button of presets) button.disabled = false;
      stop.hidden = true;
      await ctx.onClockAdvanced();
    }
  }

  function reset() {
    clearInterval(timer);
    timer = null;
    ctx.state.clock = null;
    render();
  }

  return { detect, now, render, advance, reset };
}
