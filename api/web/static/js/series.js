// Recurring tasks of the open list: a friendly form that writes the RRULE (editable by experts), the
// series with their status and next date, and the open series' controls and timeline. A viewer of a
// shared list reads the series but gets neither the form nor the controls: the API would refuse them (403).

import { errorLines } from "./api.js";
import { confirmDialog, formDialog } from "./dialog.js";
import { errorBox, field, h, replaceChildren, select, uid } from "./dom.js";
import { BEFORE_DUE, zoneInput } from "./fields.js";
import { renderSeriesDetail } from "./timeline.js";
import { toast } from "./toasts.js";
import { formatInstant, instantToWall } from "./times.js";

const WEEKDAYS = [
  ["MO", "Mon"],
  ["TU", "Tue"],
  ["WE", "Wed"],
  ["TH", "Thu"],
  ["FR", "Fri"],
  ["SA", "Sat"],
  ["SU", "Sun"],
];
const UNIT = { DAILY: ["day", "days"], WEEKLY: ["week", "weeks"], MONTHLY: ["month", "months"], HOURLY: ["hour", "hours"] };

/** "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE" -> "Every 2 weeks on Mon, Wed" (the raw rule when unusual). */
export function describeRule(rule) {
  const parts = Object.fromEntries(
    String(rule)
      .split(";")
      .map((part) => part.split("="))
      .filter(([key, value]) => key && value !== undefined)
      .map(([key, value]) => [key.toUpperCase(), value.toUpperCase()]),
  );
  const unit = UNIT[parts.FREQ];
  const known = new Set(["FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "COUNT"]);
  if (!unit || Object.keys(parts).some((key) => !known.has(key))) return rule;
  const n = Number(parts.INTERVAL ?? 1);
  let text = n === 1 ? `Every ${unit[0]}` : `Every ${n} ${unit[1]}`;
  if (parts.BYDAY) {
    const names = Object.fromEntries(WEEKDAYS);
    text += ` on ${parts.BYDAY.split(",").map((d) => names[d] ?? d).join(", ")}`;
  }
  if (parts.BYMONTHDAY) text += parts.BYMONTHDAY === "-1" ? " on the last day" : ` on day ${parts.BYMONTHDAY}`;
  if (parts.COUNT) text += `, ${parts.COUNT} times`;
  return text;
}

export function createSeriesView(ctx) {
  const root = document.getElementById("series");
  const intro = h(
    "p",
    { class: "hint" },
    "Each recurring task is a durable workflow: it sleeps on a timer until the next date, adds the item, " +
      "then continues as a new generation.",
  );
  const listEl = h("ul", { class: "series-list", "data-testid": "series-list" });
  const formBox = h("details", { class: "new-series" }, h("summary", {}, "New recurring task"));
  const detail = h("div", { class: "series-detail", "data-testid": "series-detail", "aria-live": "off" });
  root.append(h("h2", { id: "series-heading" }, "Recurring tasks"), intro, listEl, formBox, detail);
  let formFor = null;

  function buildForm(list) {
    const title = h("input", { name: "title", required: true, maxlength: 500, autocomplete: "off" });
    const freq = select(
      "freq",
      [
        ["DAILY", "Daily"],
        ["WEEKLY", "Weekly"],
        ["MONTHLY", "Monthly"],
        ["CUSTOM", "Custom (RRULE)"],
      ],
      "DAILY",
    );
    const interval = h("input", { type: "number", name: "interval", min: 1, max: 999, value: 1 });
    const days = WEEKDAYS.map(([code, name]) => {
      const id = uid("day");
      return [code, h("input", { type: "checkbox", id, value: code }), h("label", { for: id, class: "inline" }, name)];
    });
    const daysBox = h("fieldset", { class: "weekdays" }, h("legend", {}, "On"), days.map(([, box, label]) => h("span", {}, box, label)));
    const monthDay = h("input", { type: "number", name: "monthday", min: -1, max: 31, value: 1 });
    const monthField = field("Day of the month", monthDay, "-1 is the last day of the month");
    const count = h("input", { type: "number", name: "count", min: 1, max: 10000, placeholder: "never" });
    const rule = h("input", { name: "rule", required: true, value: "FREQ=DAILY", spellcheck: "false", class: "mono" });
    const start = h("input", { type: "datetime-local", name: "dtstart", required: true });
    const zone = zoneInput("tz", list.tz);
    const anchor = select("anchor", [["schedule", "On schedule"], ["completion", "After I complete the previous one"]], "schedule");
    const catchUp = select(
      "catch_up",
      [["skip", "Skip missed dates"], ["latest", "Create only the latest missed"], ["all", "Create every missed date"]],
      "skip",
    );
    const dueMode = select("due", [["occurrence", "At the occurrence time"], ["all_day", "All day"], ["none", "No due"]], "occurrence");
    const reminder = select("reminder", [["", "No reminder"], ...BEFORE_DUE], "");
    const errors = errorBox();

    const writeRule = () => {
      if (freq.value === "CUSTOM") return;
      let text = `FREQ=${freq.value}`;
      if (Number(interval.value) > 1) text += `;INTERVAL=${Number(interval.value)}`;
      const picked = days.filter(([, box]) => box.checked).map(([code]) => code);
      if (freq.value === "WEEKLY" && picked.length) text += `;BYDAY=${picked.join(",")}`;
      if (freq.value === "MONTHLY" && monthDay.value) text += `;BYMONTHDAY=${Number(monthDay.value)}`;
      if (Number(count.value) > 0) text += `;COUNT=${Number(count.value)}`;
      rule.value = text;
    };
    const sync = () => {
      daysBox.hidden = freq.value !== "WEEKLY";
      monthField.hidden = freq.value !== "MONTHLY";
      writeRule();
    };
    for (const control of [freq, interval, monthDay, count, ...days.map(([, box]) => box)]) {
      control.addEventListener("input", sync);
      control.addEventListener("change", sync);
    }
    rule.addEventListener("input", () => {
      freq.value = "CUSTOM";
      sync();
    });
    const resetStart = () => {
      // The next full hour on the engine's clock, in the series' zone.
      start.value = `${instantToWall(ctx.now() + 3600_000, zone.value.trim() || list.tz).slice(0, 14)}00`;
    };
    resetStart();
    sync();

    const form = h(
      "form",
      { class: "series-form", novalidate: true },
      field("Title of each item", title),
      h("div", { class: "row" }, field("Repeats", freq), field("Every", interval, "1 = every day/week/month"), field("Times (blank: forever)", count)),
      daysBox,
      monthField,
      field("Rule (RFC 5545 RRULE)", rule, "Written from the choices above; edit it for anything else."),
      h("div", { class: "row" }, field("First date", start, "A wall time in the zone below"), field("Time zone", zone)),
      h("div", { class: "row" }, field("Next one is planned", anchor), field("Dates missed while paused or down", catchUp)),
      h("div", { class: "row" }, field("Item due", dueMode), field("Reminder", reminder)),
      errors.el,
      h("button", { type: "submit" }, "Create series"),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      errors.hide();
      const template = { title: title.value.trim(), due: dueMode.value };
      if (reminder.value) template.reminders = [{ before_due: reminder.value }];
      const body = {
        list_id: list.id,
        template,
        rule: rule.value.trim(),
        dtstart: start.value.length === 16 ? `${start.value}:00` : start.value,
        tz: zone.value.trim(),
        anchor: anchor.value,
        catch_up: catchUp.value,
      };
      try {
        const { data } = await ctx.api.post("/v1/series", body);
        title.value = "";
        resetStart();
        formBox.open = false;
        ctx.state.series.push(data);
        toast(`Series “${data.template.title}” created`, { kind: "success" });
        await ctx.selectSeries(data.id);
      } catch (error) {
        errors.show(errorLines(error));
      }
    });
    replaceChildren(formBox, [h("summary", {}, "New recurring task"), form]);
    formFor = list.id;
  }

  function render() {
    const list = ctx.state.lists.find((l) => l.id === ctx.state.listId);
    root.hidden = !list;
    if (!list) return;
    if (formFor !== list.id) buildForm(list);
    formBox.hidden = list.role === "viewer";
    const mine = ctx.state.series.filter((s) => s.list_id === list.id);
    replaceChildren(
      listEl,
      mine.length
        ? mine.map((s) =>
            h(
              "li",
              {},
              h(
                "button",
                {
                  type: "button",
                  class: "series-link",
                  "aria-current": s.id === ctx.state.seriesId ? "true" : false,
                  dataset: { focus: `series-${s.id}`, seriesId: s.id },
                  onclick: () => ctx.selectSeries(s.id),
                },
                h("span", { class: "series-title" }, s.template.title),
                h("span", { class: `badge status-${s.status}` }, s.status),
                h("span", { class: "hint" }, describeRule(s.rule)),
                s.next_occurrence_at
                  ? h("span", { class: "hint" }, `next ${formatInstant(Date.parse(s.next_occurrence_at), s.tz)}`)
                  : null,
              ),
            ),
          )
        : [h("li", { class: "empty" }, "No recurring tasks in this list.")],
    );
    renderDetail();
  }

  function renderDetail() {
    const data = ctx.state.seriesDetail;
    if (!data || data.series.id !== ctx.state.seriesId || data.series.list_id !== ctx.state.listId) {
      replaceChildren(detail, []);
      return;
    }
    replaceChildren(detail, renderSeriesDetail(ctx, data, actions(data.series)));
  }

  function actions(series) {
    const list = ctx.state.lists.find((l) => l.id === series.list_id);
    if (list?.role === "viewer") return [];
    const live = series.status === "running" || series.status === "paused";
    const act = (label, path, confirmText) =>
      h(
        "button",
        {
          type: "button",
          class: label === "Cancel series" ? "danger" : "secondary",
          dataset: { focus: `act-${label}` },
          onclick: async () => {
            if (confirmText && !(await confirmDialog(confirmText, label))) return;
            try {
              const { data } = await ctx.api.post(`/v1/series/${series.id}:${path}`);
              ctx.updateSeries(data);
              toast(`${label}: “${data.template.title}”`, { kind: "success" });
            } catch (error) {
              toast(`${label} failed`, { kind: "error", body: errorLines(error) });
            }
            await ctx.refreshSeriesDetail();
          },
        },
        label,
      );
    const buttons = [];
    if (series.status === "running") buttons.push(act("Pause", "pause"));
    if (series.status === "paused") buttons.push(act("Resume", "resume"));
    if (series.status === "running" && series.next_occurrence_index !== null) buttons.push(act("Skip next", "skip"));
    if (live) {
      buttons.push(
        h("button", { type: "button", class: "secondary", dataset: { focus: "act-Edit" }, onclick: () => edit(series) }, "Edit"),
      );
      buttons.push(act("Cancel series", "cancel", `Cancel “${series.template.title}” for good?`));
    }
    return buttons;
  }

  async function edit(series) {
    const title = h("input", { name: "title", value: series.template.title, required: true, maxlength: 500 });
    const rule = h("input", { name: "rule", value: series.rule, spellcheck: "false", class: "mono" });
    await formDialog({
      title: `Edit “${series.template.title}”`,
      body: [field("Title of each item", title), field("Rule (RRULE)", rule, "Applies from the next occurrence on")],
      onSubmit: async () => {
        const patch = {};
        if (rule.value.trim() !== series.rule) patch.rule = rule.value.trim();
        if (title.value.trim() !== series.template.title) patch.template = { title: title.value.trim() };
        if (!Object.keys(patch).length) return;
        const { data } = await ctx.api.patch(`/v1/series/${series.id}`, patch);
        ctx.updateSeries(data);
        await ctx.refreshSeriesDetail();
      },
    });
  }

  return { render, renderDetail };
}
