// Notifications (issue 15's routes): subscriptions (create, test, enable/disable,
// delete) and the history of deliveries.

import { api, can, isMissing } from "../api.js";
import { confirmAction, errorBox, h, shortId, time, toast, unavailable } from "../ui.js";

const EVENTS = ["run.succeeded", "run.failed", "run.cancelled", "run.started", "task.dead_lettered"];

function createForm(onCreated) {
  const status = h("div", { "aria-live": "assertive" });
  const form = h("form", { "aria-labelledby": "subscribe-title" },
    h("h2", { id: "subscribe-title" }, "New subscription"),
    h("div", { class: "filters" },
      h("label", {}, "Name", h("input", { name: "name", required: true, maxlength: 200 })),
      h("label", {}, "Channel", h("select", { name: "channel" }, h("option", { value: "webhook" }, "webhook"), h("option", { value: "email" }, "email"))),
      h("label", {}, "Target", h("input", { name: "target", required: true, size: 40, placeholder: "https://… or a@example.com, b@example.com" })),
      h("label", {}, "Workflows", h("input", { name: "workflows", placeholder: "names, comma-separated (all if empty)", size: 30 }))),
    h("fieldset", {}, h("legend", {}, "Events"),
      EVENTS.map((name) => h("span", {}, h("input", { type: "checkbox", name: "events", value: name, id: `event-${name}`, checked: name === "run.failed" }),
        h("label", { for: `event-${name}`, class: "check" }, ` ${name}  `)))),
    status, h("p", {}, h("button", { type: "submit", class: "primary" }, "Subscribe")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const channel = data.get("channel");
    const target = String(data.get("target")).trim();
    const workflows = String(data.get("workflows")).split(",").map((name) => name.trim()).filter(Boolean);
    const body = {
      name: data.get("name"), channel,
      target: channel === "email" ? target.split(",").map((address) => address.trim()).filter(Boolean) : target,
      events: data.getAll("events"),
    };
    if (workflows.length) body.filter = { workflows };
    try {
      const created = await api("POST", "/api/v1/subscriptions", { body });
      status.replaceChildren(created.secret ? h("p", { role: "alert" }, "Signing secret (shown once): ", h("code", {}, created.secret)) : "");
      onCreated();
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  });
  return form;
}

export async function render(view) {
  const subscriptions = h("div", { "aria-live": "polite" });
  const deliveries = h("div");
  const form = can("developer") ? createForm(() => load()) : null;

  async function act(subscription, action) {
    const path = `/api/v1/subscriptions/${encodeURIComponent(subscription.id)}`;
    try {
      if (action === "test") { await api("POST", `${path}/test`); toast("Test event sent."); }
      if (action === "toggle") await api("PATCH", path, { body: { enabled: !subscription.enabled } });
      if (action === "delete") {
        if (!(await confirmAction({ title: "Delete this subscription?", text: subscription.name, action: "Delete", danger: true }))) return;
        await api("DELETE", path);
      }
      load();
    } catch (error) {
      subscriptions.prepend(errorBox(error));
    }
  }

  async function load() {
    try {
      const page = await api("GET", "/api/v1/subscriptions", { query: { page_size: 100 } });
      const items = page.subscriptions || page.items || [];
      subscriptions.replaceChildren(items.length === 0 ? h("p", { class: "muted" }, "No subscriptions.") :
        h("table", { "aria-label": "Subscriptions" },
          h("thead", {}, h("tr", {}, ["Name", "Channel", "Target", "Events", "State", ""].map((name) => h("th", { scope: "col" }, name)))),
          h("tbody", {}, items.map((item) => h("tr", {},
            h("td", {}, item.name), h("td", {}, item.channel),
            h("td", {}, Array.isArray(item.target) ? item.target.join(", ") : item.target),
            h("td", {}, (item.events || []).join(", ")),
            h("td", {}, item.enabled ? "enabled" : `disabled${item.disabled_reason ? ` (${item.disabled_reason})` : ""}`),
            h("td", {}, can("developer") ? h("div", { class: "actions" },
              h("button", { type: "button", onclick: () => act(item, "test") }, "Test"),
              h("button", { type: "button", onclick: () => act(item, "toggle") }, item.enabled ? "Disable" : "Enable"),
              h("button", { type: "button", class: "danger", onclick: () => act(item, "delete") }, "Delete")) : null))))));
      const history = await api("GET", "/api/v1/deliveries", { query: { page_size: 50 } });
      const rows = history.deliveries || history.items || [];
      deliveries.replaceChildren(rows.length === 0 ? h("p", { class: "muted" }, "No deliveries yet.") :
        h("table", { "aria-label": "Deliveries" },
          h("thead", {}, h("tr", {}, ["When", "Subscription", "Run", "Status", "Answer", "Latency", "Error"].map((name) => h("th", { scope: "col" }, name)))),
          h("tbody", {}, rows.map((row) => h("tr", {},
            h("td", {}, time(row.updated_at || row.created_at)), h("td", {}, shortId(row.subscription_id)),
            h("td", {}, row.run_id ? h("a", { href: `#/runs/${encodeURIComponent(row.run_id)}` }, shortId(row.run_id)) : "—"),
            h("td", {}, row.status), h("td", {}, row.status_code ?? "—"),
            h("td", {}, row.latency_ms === undefined ? "—" : `${row.latency_ms} ms`), h("td", {}, row.error || "—"))))));
    } catch (error) {
      const missing = isMissing(error);
      subscriptions.replaceChildren(missing ? unavailable("Notifications (the notification service)") : errorBox(error));
      if (form) form.hidden = missing;
    }
  }

  view.append(h("h1", {}, "Notifications"), subscriptions, form,
    h("h2", {}, "Deliveries"), deliveries);
  await load();
}
