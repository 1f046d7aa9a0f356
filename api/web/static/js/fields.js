// Form controls shared by the item and series forms: an IANA zone input with suggestions, a due date
// (none, all day, or a wall time in a zone) and reminders (relative to the due, or at an instant).

import { field, h, select, uid } from "./dom.js";
import { formatReminder, instantToWall, usableZone, wallToInstant, zoneNames } from "./times.js";

const ZONE_LIST_ID = "zone-names";

export const BEFORE_DUE = [
  ["PT5M", "5 min before"],
  ["PT15M", "15 min before"],
  ["PT1H", "1 hour before"],
  ["P1D", "1 day before"],
];

function ensureZoneList() {
  if (document.getElementById(ZONE_LIST_ID)) return;
  document.body.append(
    h("datalist", { id: ZONE_LIST_ID }, zoneNames().map((name) => h("option", { value: name }))),
  );
}

/** A text input for an IANA zone name, with the browser's zones as suggestions. */
export function zoneInput(name, value) {
  ensureZoneList();
  return h("input", {
    name,
    value,
    list: ZONE_LIST_ID,
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    class: "zone",
  });
}

/** Due controls. read() -> null (no due) or {date} or {datetime, tz}. */
export function dueFields({ zone, due = null, nowMs = Date.now(), legend = "Due" }) {
  const kind = due?.date ? "date" : due?.datetime ? "datetime" : "none";
  const kindSelect = select(
    "due_kind",
    [
      ["none", "No due date"],
      ["date", "All day"],
      ["datetime", "Date and time"],
    ],
    kind,
  );
  const defaultWall = instantToWall(nowMs + 3600_000, zone).slice(0, 14) + "00";
  const dateInput = h("input", { type: "date", name: "due_date", value: due?.date ?? defaultWall.slice(0, 10) });
  const timeInput = h("input", {
    type: "datetime-local",
    name: "due_datetime",
    value: due?.datetime ? due.datetime.slice(0, 16) : defaultWall,
  });
  const tzInput = zoneInput("due_tz", due?.tz ?? zone);
  const dateField = field("Date", dateInput);
  const timeField = h("div", { class: "row" }, field("Date and time", timeInput), field("Time zone", tzInput));
  const sync = () => {
    dateField.hidden = kindSelect.value !== "date";
    timeField.hidden = kindSelect.value !== "datetime";
  };
  kindSelect.addEventListener("change", sync);
  sync();
  const el = h("fieldset", { class: "due" }, h("legend", {}, legend), field("Kind", kindSelect), dateField, timeField);
  return {
    el,
    read() {
      if (kindSelect.value === "date") return { date: dateInput.value };
      if (kindSelect.value === "datetime") {
        const value = timeInput.value.length === 16 ? `${timeInput.value}:00` : timeInput.value;
        return { datetime: value, tz: tzInput.value.trim() };
      }
      return null;
    },
  };
}

/** One optional relative reminder (the compact add form). read() -> [] or [{before_due}]. */
export function reminderSelect() {
  const control = select("reminder", [["", "No reminder"], ...BEFORE_DUE], "");
  return {
    el: field("Reminder", control, "Relative to the due; the due itself also notifies."),
    read: () => (control.value ? [{ before_due: control.value }] : []),
    reset: () => {
      control.value = "";
    },
  };
}

/** Every reminder of an item: relative choices, the ones already set, and one at an instant. */
export function reminderFields({ reminders = [], zone }) {
  const chosen = new Set(reminders.filter((r) => r.before_due).map((r) => r.before_due));
  const known = new Set(BEFORE_DUE.map(([value]) => value));
  const boxes = [];
  const option = (value, text, checked, payload) => {
    const id = uid("rem");
    const box = h("input", { type: "checkbox", id, checked });
    boxes.push([box, payload]);
    return h("label", { class: "inline", for: id }, box, ` ${text}`);
  };
  const relative = BEFORE_DUE.map(([value, text]) => option(value, text, chosen.has(value), { before_due: value }));
  const others = reminders
    .filter((r) => !(r.before_due && known.has(r.before_due)))
    .map((r) => option("", formatReminder(r, zone), true, r));
  const atInput = h("input", { type: "datetime-local", name: "remind_at" });
  const atZone = zoneInput("remind_at_tz", zone);
  const el = h(
    "fieldset",
    { class: "reminders" },
    h("legend", {}, "Reminders"),
    h("div", { class: "choices" }, relative, others),
    h("div", { class: "row" }, field("Also remind at", atInput), field("in time zone", atZone)),
  );
  return {
    el,
    read() {
      const out = boxes.filter(([box]) => box.checked).map(([, payload]) => payload);
      if (atInput.value) {
        const zoneName = atZone.value.trim();
        const ms = wallToInstant(atInput.value, zoneName);
        if (Number.isNaN(ms) || usableZone(zoneName) !== zoneName) {
          throw new Error("The reminder time or its time zone is not valid.");
        }
        out.push({ at: new Date(ms).toISOString() });
      }
      return out;
    },
  };
}

/** "a, b ,c" -> ["a", "b", "c"] */
export function parseLabels(text) {
  return String(text)
    .split(",")
    .map((label) => label.trim())
    .filter(Boolean);
}

export function priorityOptions() {
  return [
    ["0", "None"],
    ["1", "1 (low)"],
    ["2", "2"],
    ["3", "3"],
    ["4", "4 (urgent)"],
  ];
}
