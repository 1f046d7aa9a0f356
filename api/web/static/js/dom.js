// Building DOM nodes without innerHTML: every user string goes in as text, so nothing a title holds can
// become markup (and the Content-Security-Policy allows no inline script or style anyway).

const PROPERTIES = new Set(["value", "checked", "disabled", "selected", "hidden", "open", "indeterminate"]);

/** h("button", {type: "button", onclick: f, class: "x"}, "text", child, [more]) -> HTMLElement */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (PROPERTIES.has(key)) el[key] = value;
    else if (value === false) continue;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** Replace el's children, keeping keyboard focus on the element with the same data-focus key. */
export function replaceChildren(el, children) {
  const active = document.activeElement;
  const key = active && el.contains(active) ? active.dataset.focus : undefined;
  clear(el);
  append(el, children);
  if (key) {
    const again = el.querySelector(`[data-focus="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
  return el;
}

let counter = 0;

/** A fresh id for label/for and aria-describedby pairs. */
export function uid(prefix = "f") {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** A labelled control: <div class="field"><label for=id>text</label>control</div>. */
export function field(labelText, control, hint) {
  if (!control.id) control.id = uid();
  const parts = [h("label", { for: control.id }, labelText), control];
  if (hint) {
    const hintEl = h("small", { id: uid("hint"), class: "hint" }, hint);
    control.setAttribute("aria-describedby", hintEl.id);
    parts.push(hintEl);
  }
  return h("div", { class: "field" }, parts);
}

export function select(name, options, value) {
  return h(
    "select",
    { name },
    options.map(([optionValue, text]) => h("option", { value: optionValue, selected: optionValue === value }, text)),
  );
}

/** A form-level error box (role=alert) with show(error)/hide(). */
export function errorBox() {
  const el = h("div", { class: "form-error", role: "alert", hidden: true });
  return {
    el,
    show(lines) {
      replaceChildren(el, [].concat(lines).map((line) => h("p", {}, line)));
      el.hidden = false;
    },
    hide() {
      clear(el);
      el.hidden = true;
    },
  };
}
