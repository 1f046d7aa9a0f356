// The caller's lists: navigation between them, creating one, and editing or deleting the open one.

import { errorLines, etagOf } from "./api.js";
import { confirmDialog, formDialog } from "./dialog.js";
import { errorBox, field, h, replaceChildren } from "./dom.js";
import { zoneInput } from "./fields.js";
import { toast } from "./toasts.js";
import { browserZone } from "./times.js";

export function createListsView(ctx) {
  const root = document.getElementById("lists");
  const nav = h("ul", { class: "list-nav", "data-testid": "lists" });
  const errors = errorBox();
  const title = h("input", { name: "title", required: true, maxlength: 200, autocomplete: "off" });
  const zone = zoneInput("tz", browserZone());
  const form = h(
    "form",
    { class: "new-list", novalidate: true, "aria-labelledby": "new-list-heading" },
    h("h3", { id: "new-list-heading" }, "New list"),
    field("Title", title),
    field("Time zone", zone, "All-day and floating dues of the list resolve in this zone."),
    errors.el,
    h("button", { type: "submit" }, "Create list"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.hide();
    try {
      const { data } = await ctx.api.post("/v1/lists", { title: title.value.trim(), tz: zone.value.trim() });
      title.value = "";
      ctx.state.lists.push(data);
      await ctx.selectList(data.id);
      toast(`List “${data.title}” created`, { kind: "success" });
    } catch (error) {
      errors.show(errorLines(error));
    }
  });
  root.append(h("h2", { id: "lists-heading" }, "Lists"), nav, form);

  function render() {
    const { lists, listId } = ctx.state;
    if (!lists.length) {
      replaceChildren(nav, [h("li", { class: "empty" }, "No lists yet: create one below.")]);
      return;
    }
    replaceChildren(
      nav,
      lists.map((list) =>
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: "list-link",
              "aria-current": list.id === listId ? "page" : false,
              dataset: { focus: `list-${list.id}`, listId: list.id },
              onclick: () => ctx.selectList(list.id),
            },
            h("span", { class: "list-title" }, list.title),
            list.role && list.role !== "owner" ? h("span", { class: `badge role-${list.role}` }, `shared · ${list.role}`) : null,
            h("span", { class: "count" }, String(list.open_count), h("span", { class: "visually-hidden" }, " open")),
          ),
        ),
      ),
    );
  }

  return { render };
}

/** Edit a list's title, description and zone; If-Match is the version read when the dialog opened. */
export async function editList(ctx, listId) {
  const { data: list } = await ctx.api.get(`/v1/lists/${listId}`);
  const title = h("input", { name: "title", value: list.title, required: true, maxlength: 200 });
  const description = h("textarea", { name: "description", rows: 3, maxlength: 2000 }, list.description);
  const zone = zoneInput("tz", list.tz);
  await formDialog({
    title: `Edit list “${list.title}”`,
    body: [field("Title", title), field("Description", description), field("Time zone", zone)],
    onSubmit: async () => {
      const { data } = await ctx.api.patch(
        `/v1/lists/${list.id}`,
        { title: title.value.trim(), description: description.value, tz: zone.value.trim() },
        { ifMatch: etagOf(list.version) },
      );
      ctx.updateList(data);
      await ctx.refreshItems();
    },
  });
}

export async function deleteList(ctx, listId) {
  const { data: list } = await ctx.api.get(`/v1/lists/${listId}`);
  const confirmed = await confirmDialog(`Delete list “${list.title}” and all its items?`, "Delete list");
  if (!confirmed) return;
  try {
    await ctx.api.delete(`/v1/lists/${list.id}`, { ifMatch: etagOf(list.version) });
    ctx.state.lists = ctx.state.lists.filter((l) => l.id !== list.id);
    toast(`List “${list.title}” deleted`, { kind: "success" });
    await ctx.selectList(ctx.state.lists[0]?.id ?? null);
  } catch (error) {
    toast("Could not delete the list", { kind: "error", body: errorLines(error) });
    await ctx.refreshLists();
  }
}
