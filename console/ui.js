// Small DOM helpers: elements are built with text nodes only (never innerHTML), so
// nothing the API returns can run as markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(element, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** `h("a", {href: "#/runs"}, "Runs")`: an HTML element. */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, as h. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** A status as a badge: colour and text. */
export function badge(status) {
  return h("span", { class: `badge st-${status}` }, (status || "unknown").replace("_", " "));
}

export function time(value) {
  if (!value) return "—";
  const date = new Date(value);
  return h("time", { datetime: date.toISOString(), title: date.toISOString() }, date.toLocaleString());
}

export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3600000) return `${Math.floor(ms / 60000)} m ${Math.round((ms % 60000) / 1000)} s`;
  return `${Math.floor(ms / 3600000)} h ${Math.round((ms % 3600000) / 60000)} m`;
}

export function between(start, end) {
  if (!start) return null;
  return (end ? Date.parse(end) : Date.now()) - Date.parse(start);
}

/** A short message for everyone, read out by screen readers. */
export function toast(message) {
  const box = document.getElementById("toast");
  box.textContent = message;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.textContent = ""; }, 4000);
}

/** The problem of a failed call, as an alert box. */
export function errorBox(error) {
  const problem = error.problem || {};
  return h("div", { class: "error-box", role: "alert" },
    h("strong", {}, problem.title || "Something went wrong"),
    problem.detail || error.message ? h("div", {}, problem.detail || error.message) : null);
}

/**
 * Ask before acting: a modal dialog (focus trapped by the browser), with an optional
 * reason field. Resolves to {reason} when confirmed, null when dismissed.
 */
export function confirmAction({ title, text, action, danger = false, reason = false }) {
  return new Promise((resolve) => {
    const reasonField = reason ? h("textarea", { id: "confirm-reason", rows: 2, cols: 40, maxlength: 1024 }) : null;
    const dialog = h("dialog", { "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      h("p", {}, text),
      reasonField ? [h("label", { for: "confirm-reason" }, "Reason ", h("span", { class: "hint" }, "(optional)")), reasonField] : null,
      h("form", { method: "dialog", class: "actions" },
        h("button", { value: "cancel", type: "submit" }, "Keep as is"),
        h("button", { value: "ok", type: "submit", class: danger ? "danger" : "primary" }, action)));
    dialog.addEventListener("close", () => {
      const confirmed = dialog.returnValue === "ok";
      dialog.remove();
      resolve(confirmed ? { reason: reasonField ? reasonField.value : "" } : null);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** A section that says a service does not answer yet (its API is still to come). */
export function unavailable(what) {
  return h("p", { class: "muted", role: "note" }, `${what} is not available from this platform yet.`);
}

export function shortId(id) {
  return id && id.length > 12 ? `${id.slice(0, 8)}…` : id;
}
