// Modal dialogs on the native <dialog> element (focus moves in, Escape closes, focus returns): a form
// dialog whose errors show inside it, and a confirmation for destructive actions.

import { errorLines } from "./api.js";
import { errorBox, h, uid } from "./dom.js";

/**
 * Open a form dialog. `onSubmit` may throw: its error (an API problem's title and detail) is shown in
 * the dialog, which stays open. Resolves true when submitted, false when cancelled.
 */
export function formDialog({ title, body, submitLabel = "Save", danger = false, onSubmit }) {
  return new Promise((resolve) => {
    const headingId = uid("dialog");
    const errors = errorBox();
    const submit = h("button", { type: "submit", class: danger ? "danger" : "" }, submitLabel);
    const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
    const form = h(
      "form",
      { class: "dialog-form", novalidate: true },
      h("h2", { id: headingId }, title),
      body,
      errors.el,
      h("div", { class: "actions" }, submit, cancel),
    );
    const dialog = h("dialog", { class: "dialog", "aria-labelledby": headingId }, form);
    let submitted = false;
    const opener = document.activeElement;
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
      resolve(submitted);
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      errors.hide();
      submit.disabled = true;
      try {
        await onSubmit?.(form);
        submitted = true;
        dialog.close();
      } catch (error) {
        errors.show(errorLines(error));
      } finally {
        submit.disabled = false;
      }
    });
    document.body.append(dialog);
    dialog.showModal();
    const first = form.querySelector("input, select, textarea") ?? submit;
    first.focus();
  });
}

/** "Delete “milk”?" -> true when confirmed. */
export function confirmDialog(message, actionLabel) {
  return formDialog({ title: message, body: [], submitLabel: actionLabel, danger: true });
}
