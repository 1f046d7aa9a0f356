// The open list's members and their roles. The owner adds people by user id (the `sub` of their token),
// changes roles, hands the list over (they stay on as an editor) or removes someone; others may leave.

import { errorLines } from "./api.js";
import { confirmDialog } from "./dialog.js";
import { errorBox, field, h, replaceChildren, select } from "./dom.js";
import { toast } from "./toasts.js";

const ROLES = [
  ["editor", "Editor (items, reminders, series)"],
  ["viewer", "Viewer (read only)"],
];

export function createMembersView(ctx) {
  const root = document.getElementById("members");
  const rows = h("ul", { class: "member-list", "data-testid": "members" });
  const errors = errorBox();
  const user = h("input", { name: "member-user", required: true, maxlength: 200, autocomplete: "off", spellcheck: "false" });
  const role = select("member-role", ROLES, "editor");
  const form = h(
    "form",
    { class: "add-member", novalidate: true, "aria-labelledby": "add-member-heading" },
    h("h3", { id: "add-member-heading" }, "Share this list"),
    field("User id", user, "The `sub` of their token"),
    field("Role", role),
    errors.el,
    h("button", { type: "submit" }, "Add member"),
  );
  root.append(h("h2", { id: "members-heading" }, "Members"), rows, form);
  let members = [];
  let shownFor = null;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.hide();
    const listId = ctx.state.listId;
    try {
      const { data } = await ctx.api.post(`/v1/lists/${listId}/members`, { user: user.value.trim(), role: role.value });
      user.value = "";
      toast(`Shared with ${data.user} as ${data.role}`, { kind: "success" });
      await refresh();
    } catch (error) {
      errors.show(errorLines(error));
    }
  });

  function fail(error) {
    toast("The change failed", { kind: "error", body: errorLines(error) });
  }

  /** Read the open list's members (a list gone or no longer shared with us shows none). */
  async function refresh() {
    const listId = ctx.state.listId;
    let found = [];
    if (listId) {
      try {
        found = (await ctx.api.get(`/v1/lists/${listId}/members`)).data.items;
      } catch (error) {
        if (error?.status !== 404) throw error;
      }
    }
    if (ctx.state.listId !== listId) return;
    members = found;
    shownFor = listId;
    render();
  }

  function render() {
    const list = ctx.state.lists.find((l) => l.id === ctx.state.listId);
    root.hidden = !list;
    if (!list) return;
    const owner = (list.role ?? "owner") === "owner";
    form.hidden = !owner;
    const shown = shownFor === list.id ? members : [];
    replaceChildren(rows, shown.length ? shown.map((m) => row(list, m, owner)) : [h("li", { class: "empty" }, "Only you.")]);
  }

  function row(list, member, owner) {
    const me = member.user === ctx.state.user;
    const parts = [h("span", { class: "member-user" }, member.user, me ? " (you)" : "")];
    if (owner && member.role !== "owner") {
      const choose = select("role", [...ROLES, ["owner", "Owner (hand the list over)"]], member.role);
      choose.setAttribute("aria-label", `Role of ${member.user}`);
      choose.dataset.focus = `role-${member.user}`;
      choose.addEventListener("change", () => changeRole(list, member, choose.value).catch(fail).finally(refresh));
      parts.push(
        choose,
        h(
          "button",
          { type: "button", class: "danger", "aria-label": `Remove ${member.user}`, onclick: () => remove(list, member).catch(fail) },
          "Remove",
        ),
      );
    } else {
      parts.push(h("span", { class: `badge role-${member.role}` }, member.role));
      if (me && member.role !== "owner") {
        parts.push(h("button", { type: "button", class: "secondary", onclick: () => leave(list).catch(fail) }, "Leave list"));
      }
    }
    return h("li", { dataset: { user: member.user } }, parts);
  }

  async function changeRole(list, member, wanted) {
    if (wanted === "owner") {
      const text = `Hand “${list.title}” over to ${member.user}? You stay on as an editor.`;
      if (!(await confirmDialog(text, "Hand over"))) return;
    }
    await ctx.api.patch(`/v1/lists/${list.id}/members/${encodeURIComponent(member.user)}`, { role: wanted });
    toast(wanted === "owner" ? `${member.user} now owns “${list.title}”` : `${member.user} is now ${wanted}`, { kind: "success" });
    if (wanted === "owner") await ctx.refreshLists();
  }

  async function remove(list, member) {
    if (!(await confirmDialog(`Remove ${member.user} from “${list.title}”?`, "Remove"))) return;
    await ctx.api.delete(`/v1/lists/${list.id}/members/${encodeURIComponent(member.user)}`);
    toast(`${member.user} removed`, { kind: "success" });
    await refresh();
  }

  async function leave(list) {
    if (!(await confirmDialog(`Leave “${list.title}”? You lose access at once.`, "Leave list"))) return;
    await ctx.api.delete(`/v1/lists/${list.id}/members/${encodeURIComponent(ctx.state.user)}`);
    toast(`You left “${list.title}”`, { kind: "success" });
    await ctx.refreshLists();
  }

  return { refresh, render };
}
