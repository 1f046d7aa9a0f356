// The open list's items: add, edit, complete/reopen, reorder, delete. Every change sends the item's
// ETag in If-Match (the list's for a reorder); a stale one shows the API's 412 problem and reloads.
// A viewer of a shared list gets none of these controls: the API would refuse them (403).

import { errorLines, etagOf } from "./api.js";
import { createCalendarFeed, revokeCalendarFeed } from "./calendar.js";
import { confirmDialog, formDialog } from "./dialog.js";
import { errorBox, field, h, replaceChildren, select } from "./dom.js";
import { dueFields, parseLabels, priorityOptions, reminderFields, reminderSelect } from "./fields.js";
import { deleteList, editList } from "./lists.js";
import { toast } from "./toasts.js";
import { dueInstant, formatDue, formatReminder, relative } from "./times.js";

/** Whether the caller may change the list's items: its owner or an editor, not a viewer. */
function canEdit(list) {
  return list.role !== "viewer";
}

/** Display order, as the engine orders a list: position, then creation, then id. */
export function ordered(items) {
  return [...items].sort(
    (a, b) =>
      a.position - b.position ||
      a.created_at.localeCompare(b.created_at) ||
      a.id.localeCompare(b.id),
  );
}

export function createItemsView(ctx) {
  const root = document.getElementById("items");
  const heading = h("h2", { id: "items-heading" }, "Items");
  const meta = h("p", { class: "list-meta" });
  const listActions = h("div", { class: "actions" });
  const filter = select(
    "filter",
    [
      ["all", "All items"],
      ["open", "Open"],
      ["completed", "Completed"],
    ],
    "all",
  );
  filter.addEventListener("change", () => renderRows());
  const rows = h("ul", { class: "item-list", "data-testid": "items" });
  const form = h("form", { class: "add-item", novalidate: true, "aria-labelledby": "add-item-heading" });
  const body = h("div", { class: "list-body" });
  root.append(heading, meta, listActions, body);

  let addForm = null;

  function buildAddForm(list) {
    const title = h("input", { name: "title", required: true, maxlength: 500, autocomplete: "off" });
    const due = dueFields({ zone: list.tz, nowMs: ctx.now() });
    const reminder = reminderSelect();
    const priority = select("priority", priorityOptions(), "0");
    const labels = h("input", { name: "labels", autocomplete: "off" });
    const errors = errorBox();
    replaceChildren(form, [
      h("h3", { id: "add-item-heading" }, "Add an item"),
      field("Title", title),
      due.el,
      h("div", { class: "row" }, reminder.el, field("Priority", priority), field("Labels", labels, "Comma separated")),
      errors.el,
      h("button", { type: "submit" }, "Add item"),
    ]);
    form.onsubmit = async (event) => {
      event.preventDefault();
      errors.hide();
      try {
        const payload = {
          title: title.value.trim(),
          due: due.read(),
          reminders: reminder.read(),
          priority: Number(priority.value),
          labels: parseLabels(labels.value),
        };
        if (payload.due === null) delete payload.due;
        const { data } = await ctx.api.post(`/v1/lists/${list.id}/items`, payload);
        apply(data);
        // The due stays as chosen: the next item is often due alike.
        title.value = "";
        labels.value = "";
        priority.value = "0";
        reminder.reset();
        title.focus();
      } catch (error) {
        errors.show(errorLines(error));
      }
    };
    addForm = list.id;
  }

  function currentList() {
    return ctx.state.lists.find((list) => list.id === ctx.state.listId) ?? null;
  }

  function render() {
    const list = currentList();
    if (!list) {
      heading.textContent = "Items";
      meta.textContent = "Create a list or pick one to see its items.";
      replaceChildren(listActions, []);
      replaceChildren(body, []);
      addForm = null;
      return;
    }
    heading.textContent = list.title;
    const parts = [`Time zone ${list.tz}`, `${list.open_count} open, ${list.completed_count} done`];
    meta.textContent = [list.description, ...parts].filter(Boolean).join(" · ");
    // Changing or deleting the list and its feed URL are the owner's (a member's role is on the summary).
    const owner = (list.role ?? "owner") === "owner";
    replaceChildren(listActions, owner ? [
      h("button", { type: "button", class: "secondary", onclick: () => editList(ctx, list.id).catch(fail) }, "Edit list"),
      h("button", { type: "button", class: "danger", onclick: () => deleteList(ctx, list.id).catch(fail) }, "Delete list"),
      h("button", { type: "button", class: "secondary", onclick: () => createCalendarFeed(ctx, list.id).catch(fail) }, "Calendar feed"),
      h("button", { type: "button", class: "secondary", onclick: () => revokeCalendarFeed(ctx, list.id).catch(fail) }, "Revoke feed"),
    ] : []);
    if (addForm !== list.id) buildAddForm(list);
    form.hidden = !canEdit(list);
    if (!body.contains(form)) replaceChildren(body, [form, h("div", { class: "row filter" }, field("Show", filter)), rows]);
    renderRows();
  }

  function renderRows() {
    const list = currentList();
    if (!list) return;
    const all = ordered(ctx.state.items.values());
    const shown = all.filter((item) => filter.value === "all" || item.status === filter.value);
    if (!shown.length) {
      replaceChildren(rows, [h("li", { class: "empty" }, all.length ? "Nothing matches the filter." : "No items yet.")]);
      return;
    }
    replaceChildren(
      rows,
      shown.map((item) => row(list, item, all)),
    );
  }

  function row(list, item, all) {
    const editor = canEdit(list);
    const index = all.indexOf(item);
    const done = item.status === "completed";
    const name = `“${item.title}”`;
    const meta = [];
    if (item.due) {
      const at = dueInstant(item.due, list.tz);
      const late = !done && at < ctx.now();
      meta.push(
        h("span", { class: late ? "due overdue" : "due" }, `Due ${formatDue(item.due, list.tz)} · ${relative(at, ctx.now())}`),
      );
    }
    for (const reminder of item.reminders) meta.push(h("span", { class: "reminder" }, `Reminder ${formatReminder(reminder, list.tz)}`));
    if (item.priority) meta.push(h("span", { class: "priority" }, `Priority ${item.priority}`));
    for (const label of item.labels) meta.push(h("span", { class: "label" }, `#${label}`));
    if (item.series_id) {
      meta.push(
        h(
          "button",
          { type: "button", class: "link series-badge", onclick: () => ctx.selectSeries(item.series_id) },
          `Occurrence #${item.occurrence + 1} of a series`,
        ),
      );
    }
    if (item.notes) meta.push(h("span", { class: "notes" }, item.notes));
    return h(
      "li",
      { class: done ? "item done" : "item", dataset: { itemId: item.id, testid: "item" } },
      h("input", {
        type: "checkbox",
        checked: done,
        disabled: !editor, // shows the status; only an editor may change it
        "aria-label": `Completed: ${item.title}`,
        dataset: { focus: `done-${item.id}` },
        onchange: (event) => toggle(list, item, event.target),
      }),
      h("div", { class: "item-main" }, h("span", { class: "item-title" }, item.title), h("div", { class: "item-meta" }, meta)),
      editor && h(
        "div",
        { class: "item-actions" },
        h("button", { type: "button", class: "icon", "aria-label": `Move ${name} up`, disabled: index <= 0, dataset: { focus: `up-${item.id}` }, onclick: () => move(list, all, index, -1) }, "↑"),
        h("button", { type: "button", class: "icon", "aria-label": `Move ${name} down`, disabled: index >= all.length - 1, dataset: { focus: `down-${item.id}` }, onclick: () => move(list, all, index, 1) }, "↓"),
        h("button", { type: "button", class: "secondary", "aria-label": `Edit ${name}`, dataset: { focus: `edit-${item.id}` }, onclick: () => edit(list, item) }, "Edit"),
        h("button", { type: "button", class: "danger", "aria-label": `Delete ${name}`, onclick: () => remove(list, item) }, "Delete"),
      ),
    );
  }

  function fail(error) {
    toast("The change failed", { kind: "error", body: errorLines(error) });
  }

  async function recover(error) {
    fail(error);
    if (error?.status === 412 || error?.status === 404) await ctx.refreshItems();
  }

  async function toggle(list, item, box) {
    const action = box.checked ? "complete" : "reopen";
    try {
      const { data } = await ctx.api.post(`/v1/lists/${list.id}/items/${item.id}:${action}`, undefined, {
        ifMatch: etagOf(item.version),
      });
      apply(data);
    } catch (error) {
      box.checked = !box.checked;
      await recover(error);
    }
  }

  /** Swap an item with its neighbour; on 412 (the list changed meanwhile) reload and try once more. */
  async function move(list, all, index, step, retried = false) {
    const item = all[index];
    const other = all[index + step];
    if (!item || !other) return;
    const ids = step < 0 ? [item.id, other.id] : [other.id, item.id];
    try {
      const { data } = await ctx.api.post(`/v1/lists/${list.id}/items:reorder`, { ids }, {
        ifMatch: etagOf(ctx.state.listVersion),
      });
      ctx.updateList(data);
      await ctx.refreshItems();
    } catch (error) {
      if (error?.status !== 412 || retried) {
        await recover(error);
        return;
      }
      await ctx.refreshItems();
      const fresh = ordered(ctx.state.items.values());
      const at = fresh.findIndex((candidate) => candidate.id === item.id);
      if (at !== -1) await move(list, fresh, at, step, true);
    }
  }

  async function remove(list, item) {
    if (!(await confirmDialog(`Delete “${item.title}”?`, "Delete item"))) return;
    try {
      await ctx.api.delete(`/v1/lists/${list.id}/items/${item.id}`, { ifMatch: etagOf(item.version) });
      apply(item, true);
    } catch (error) {
      await recover(error);
    }
  }

  async function edit(list, item) {
    const title = h("input", { name: "title", value: item.title, required: true, maxlength: 500 });
    const notes = h("textarea", { name: "notes", rows: 3 }, item.notes);
    const priority = select("priority", priorityOptions(), String(item.priority));
    const labels = h("input", { name: "labels", value: item.labels.join(", ") });
    const due = dueFields({ zone: list.tz, due: item.due, nowMs: ctx.now() });
    const reminders = reminderFields({ reminders: item.reminders, zone: list.tz });
    await formDialog({
      title: `Edit “${item.title}”`,
      body: [
        field("Title", title),
        field("Notes", notes),
        h("div", { class: "row" }, field("Priority", priority), field("Labels", labels, "Comma separated")),
        due.el,
        reminders.el,
      ],
      onSubmit: async () => {
        const patch = {
          title: title.value.trim(),
          notes: notes.value,
          priority: Number(priority.value),
          labels: parseLabels(labels.value),
          due: due.read(),
          reminders: reminders.read(),
        };
        const { data } = await ctx.api.patch(`/v1/lists/${list.id}/items/${item.id}`, patch, {
          ifMatch: etagOf(item.version),
        });
        apply(data);
      },
    });
  }

  /** Take an item snapshot (from a response or an event) unless a newer one is already shown. */
  function apply(item, deleted = false) {
    const known = ctx.state.items.get(item.id);
    if (known && known.version > item.version) return;
    if (ctx.state.deleted.has(item.id)) return;
    if (deleted) {
      ctx.state.items.delete(item.id);
      ctx.state.deleted.add(item.id);
    } else {
      ctx.state.items.set(item.id, item);
    }
    renderRows();
  }

  return { render, renderRows, apply };
}
