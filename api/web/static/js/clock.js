// The engine's clock. With `todo-engine up --dev-clock`, GET /v1/dev/clock answers and time can be moved
// forward, so a person can watch a month of a series in a minute. Without it (404) the control is hidden.
//
// An advance is one request: the engine lets the time pass, firing every reminder and occurrence due on
// the way on its own instant, and answers once everything it caused is done.

import { errorLines } from "./api.js";
import { field, h, select } from "./dom.js";
import { toast } from "./toasts.js";
import { browserZone, formatInstant, formatSeconds } from "./times.js";

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

export function createClock(ctx) {
  const header = document.getElementById("clock");
  const nowEl = document.getElementById("clock-now");
  const offsetEl = document.getElementById("clock-offset");
  const panel = document.getElementById("dev-clock");
  const status = h("p", { class: "clock-status", role: "status", "data-testid": "clock-status" });
  const amount = h("input", { type: "number", name: "amount", min: 0, step: "any", value: 2 });
  const unit = select("unit", UNITS, "86400");
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
  panel.append(
    h("h2", { id: "dev-clock-heading" }, "Dev clock"),
    h("p", { class: "hint" }, "Move the engine's time forward: reminders and series fire as if the time had passed."),
    h("div", { class: "actions" }, presets),
    custom,
    status,
  );

  let busy = false;
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

  /** How many occurrences the caller's series have created so far (to say what an advance brought). */
  async function occurrencesSoFar() {
    const series = await ctx.api.all("/v1/series", { limit: 200 });
    return series.reduce((sum, s) => sum + (s.occurrences_created || 0), 0);
  }

  async function advance(seconds) {
    if (busy) return;
    busy = true;
    for (const button of presets) button.disabled = true;
    try {
      await detect();
      const before = await occurrencesSoFar();
      status.textContent = `Advancing ${formatSeconds(seconds)}…`;
      const { data } = await ctx.api.post("/v1/dev/clock:advance", { seconds: Math.max(0, seconds) });
      adopt(data);
      const occurrences = (await occurrencesSoFar()) - before;
      status.textContent =
        `Advanced to ${formatInstant(Date.parse(data.now), browserZone())}` +
        (occurrences ? `; ${occurrences} occurrence(s) fell due on the way.` : ".");
    } catch (error) {
      status.textContent = "The clock could not be advanced.";
      toast("The clock could not be advanced", { kind: "error", body: errorLines(error) });
    } finally {
      busy = false;
      for (const button of presets) button.disabled = false;
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
