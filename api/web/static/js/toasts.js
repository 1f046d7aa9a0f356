// Toasts: short messages in aria-live regions (polite for news, assertive for errors), each with a
// Dismiss button. Reminders stay until dismissed; other news fades after a few seconds.

import { h } from "./dom.js";

const MAX_VISIBLE = 6;
const FADE_MS = { info: 6000, success: 4000, error: 12000 };

const stacks = () => ({
  polite: document.getElementById("toasts"),
  assertive: document.getElementById("alerts"),
});

/**
 * Show a toast.
 * @param {string} title  the first line
 * @param {{body?: string|string[], kind?: "info"|"success"|"error"|"reminder", sticky?: boolean,
 *          testid?: string}} options
 */
export function toast(title, { body = [], kind = "info", sticky = kind === "reminder", testid } = {}) {
  const stack = kind === "error" ? stacks().assertive : stacks().polite;
  const key = JSON.stringify([kind, title, body]);
  // The same news twice (a background refresh failing on every retry) shows once.
  for (const shown of stack.children) if (shown.dataset.key === key) return shown;
  const close = () => el.remove();
  const el = h(
    "div",
    { class: `toast toast-${kind}`, dataset: { testid: testid ?? `toast-${kind}`, key } },
    h("div", { class: "toast-text" }, h("strong", {}, title), [].concat(body).map((line) => h("p", {}, line))),
    h("button", { type: "button", class: "toast-close", "aria-label": `Dismiss: ${title}`, onclick: close }, "×"),
  );
  stack.append(el);
  while (stack.children.length > MAX_VISIBLE) stack.firstElementChild.remove();
  if (!sticky) setTimeout(close, FADE_MS[kind] ?? FADE_MS.info);
  return el;
}

export function clearToasts() {
  for (const stack of Object.values(stacks())) stack.replaceChildren();
}
