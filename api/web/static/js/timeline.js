// The picture of a series: what the engine did (occurrences created, skipped, completed), what it will do
// (the next dates), and what its workflow is doing now: the history of the current generation (timers,
// activities, events), plus the earlier generations this page saw before each continue-as-new.

import { h } from "./dom.js";
import { formatInstant, relative } from "./times.js";

const KIND_LABEL = {
  started: "started",
  timer_created: "timer set",
  timer_fired: "timer fired",
  activity_scheduled: "activity",
  activity_completed: "activity done",
  activity_failed: "activity failed",
  event_raised: "event",
  paused: "paused",
  resumed: "resumed",
  terminate_requested: "terminate",
  continued_as_new: "continue-as-new",
  completed: "completed",
  terminated: "terminated",
  failed: "failed",
};

const PHASES = {
  creating: "creating the item of an occurrence",
  waiting: "sleeping on a durable timer until the next date",
  awaiting_completion: "waiting for the last item to be completed",
  ended: "ended",
};

function occurrenceText(entry) {
  const n = `#${entry.index + 1}`;
  switch (entry.status) {
    case "created":
      return entry.completed_at ? `${n} created, completed` : `${n} created`;
    case "skipped":
      return `${n} skipped`;
    case "deleted":
      return `${n} created, item deleted`;
    case "failed":
      return `${n} failed: ${entry.error ?? "unknown error"}`;
    default:
      return `${n} ${entry.status ?? "pending"}`;
  }
}

function strip(points, now, zone) {
  const times = [...points.map((p) => p.at), now];
  let min = Math.min(...times);
  let max = Math.max(...times);
  if (max - min < 3600_000) max = min + 3600_000;
  const pad = (max - min) * 0.04;
  min -= pad;
  max += pad;
  const left = (t) => `${((t - min) / (max - min)) * 100}%`;
  const dot = (cls, t, label) => {
    const el = h("span", { class: `dot ${cls}`, title: label });
    el.style.left = left(t); // CSSOM, not an inline style attribute: allowed by the CSP
    return el;
  };
  const past = points.filter((p) => !p.upcoming).length;
  const summary = `${past} occurrence(s) so far, ${points.length - past} planned; now is ${formatInstant(now, zone)}`;
  return h(
    "div",
    { class: "strip", role: "img", "aria-label": summary, "data-testid": "strip" },
    h("span", { class: "axis" }),
    points.map((p) => dot(p.cls, p.at, p.label)),
    dot("now", now, "now"),
  );
}

/** Nodes showing one series: `data` = {series, occurrences, upcoming, workflow, history, generations}. */
export function renderSeriesDetail(ctx, data, actions) {
  const { series, occurrences, upcoming, workflow, history, generations } = data;
  const zone = series.tz;
  const now = ctx.now();
  const when = (iso) => formatInstant(Date.parse(iso), zone, { year: false });

  const recent = occurrences.slice(-30);
  const points = [
    ...recent
      .filter((o) => o.scheduled_at)
      .map((o) => ({
        at: Date.parse(o.scheduled_at),
        cls: `dot-${o.completed_at ? "completed" : o.status}`,
        label: `${occurrenceText(o)} · ${when(o.scheduled_at)}`,
      })),
    ...upcoming.map((u) => ({
      at: Date.parse(u.at),
      cls: "dot-upcoming",
      upcoming: true,
      label: `#${u.index + 1} planned · ${when(u.at)}`,
    })),
  ];

  const rows = [
    ...recent.map((o) =>
      h(
        "li",
        { class: `tl tl-${o.completed_at ? "completed" : o.status}`, dataset: { testid: "occurrence", status: o.status } },
        h("time", { datetime: o.scheduled_at ?? "" }, o.scheduled_at ? when(o.scheduled_at) : "—"),
        h("span", {}, occurrenceText(o)),
      ),
    ),
    h("li", { class: "tl tl-now" }, h("time", {}, formatInstant(now, zone, { year: false })), h("span", {}, "now")),
    ...upcoming.map((u) =>
      h(
        "li",
        { class: "tl tl-upcoming", dataset: { testid: "upcoming" } },
        h("time", { datetime: u.at }, when(u.at)),
        h("span", {}, `#${u.index + 1} planned · ${relative(Date.parse(u.at), now)}`),
      ),
    ),
  ];

  const status = workflow?.custom_status ?? {};
  const doing =
    workflow?.runtime_status === "RUNNING"
      ? `${PHASES[status.phase] ?? "running"}${status.next_at ? ` (${when(status.next_at)})` : ""}`
      : (workflow?.runtime_status ?? "gone (purged)").toLowerCase();
  const current = history?.generation ?? status.generation ?? null;
  const earlier = [...(generations?.entries() ?? [])]
    .filter(([generation]) => current === null || generation < current)
    .sort(([a], [b]) => b - a);

  return [
    h(
      "h3",
      { id: "series-detail-heading" },
      series.template.title,
      " ",
      h("span", { class: `badge status-${series.status}`, "data-testid": "series-status" }, series.status),
    ),
    h(
      "p",
      { class: "hint" },
      h("code", {}, series.rule),
      ` · ${zone} · ${series.anchor === "completion" ? "next one after completion" : "on schedule"}` +
        ` · missed dates: ${series.catch_up}`,
    ),
    h("div", { class: "actions" }, actions),
    h(
      "p",
      { class: "stats", "data-testid": "series-stats" },
      `${series.occurrences_created} created · ${series.occurrences_skipped} skipped · ${series.occurrences_missed} missed`,
      series.ended_reason ? ` · ended: ${series.ended_reason}` : "",
    ),
    h("h4", {}, "Timeline"),
    strip(points, now, zone),
    h("ol", { class: "timeline", "data-testid": "occurrences", "aria-label": "Occurrences and next dates" }, rows),
    h("h4", {}, "Workflow"),
    h(
      "p",
      { "data-testid": "workflow-status" },
      h("code", {}, series.workflow.instance_id),
      ` · ${workflow?.runtime_status ?? series.workflow.runtime_status ?? "unknown"}`,
      current !== null ? ` · generation ${current}` : "",
      ` · ${doing}`,
    ),
    historyList(history?.events ?? [], zone, `History of generation ${current ?? "?"}`, "history"),
    earlier.length
      ? h(
          "details",
          {
            class: "generations",
            open: Boolean(ctx.state.showGenerations), // kept across the periodic re-render
            ontoggle: (event) => {
              ctx.state.showGenerations = event.target.open;
            },
          },
          h("summary", {}, `Earlier generations seen on this page (${earlier.length}), each ended by continue-as-new`),
          earlier.map(([generation, events]) => historyList(events, zone, `Generation ${generation}`, "old-history")),
        )
      : null,
  ];
}

function historyList(events, zone, title, testid) {
  return h(
    "section",
    { class: "history" },
    h("h5", {}, title),
    h(
      "ol",
      { class: "history-list", "data-testid": testid },
      events.map((event) =>
        h(
          "li",
          { class: `ev ev-${event.kind}`, dataset: { kind: event.kind } },
          h("span", { class: "ev-kind" }, KIND_LABEL[event.kind] ?? event.kind),
          h("time", { datetime: event.at }, formatInstant(Date.parse(event.at), zone, { seconds: true, weekday: false, year: false })),
          h("span", { class: "ev-detail" }, event.detail),
        ),
      ),
    ),
  );
}
