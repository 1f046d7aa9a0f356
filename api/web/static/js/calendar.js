// The list's calendar feed: a secret URL calendar apps subscribe to without a bearer token. The API shows
// the URL once (it keeps only a hash), so the page shows it once too; revoking makes it answer 404.

import { confirmDialog, formDialog } from "./dialog.js";
import { field, h } from "./dom.js";
import { toast } from "./toasts.js";

/** Make a new feed URL (an earlier one stops working) and show it once. */
export async function createCalendarFeed(ctx, listId) {
  const made = { url: null };
  const ok = await formDialog({
    title: "Calendar feed",
    body: [
      h("p", {}, "Make a secret URL that calendar apps can subscribe to. It is shown only once;"),
      h("p", {}, "making a new one stops the old URL."),
    ],
    submitLabel: "Make feed URL",
    onSubmit: async () => {
      const { data } = await ctx.api.post(`/v1/lists/${listId}/calendar-feed`);
      made.url = data.url;
    },
  });
  if (!ok || !made.url) return;
  const url = h("input", { name: "feed-url", readonly: true, value: made.url, "data-testid": "feed-url" });
  url.addEventListener("focus", () => url.select());
  await formDialog({
    title: "Your calendar feed URL",
    body: [field("Subscribe to this URL (copy it now: it is not shown again)", url)],
    submitLabel: "Done",
  });
}

/** Revoke the list's feed URL. */
export async function revokeCalendarFeed(ctx, listId) {
  if (!(await confirmDialog("Revoke the calendar feed URL?", "Revoke"))) return;
  await ctx.api.delete(`/v1/lists/${listId}/calendar-feed`);
  toast("Calendar feed revoked", { kind: "success", body: "Its URL no longer works." });
}
