// Workflows: the latest version of each, by name (GET /api/v1/workflows).

import { api } from "../api.js";
import { h, time } from "../ui.js";

export async function render(view, _params, query) {
  const prefix = query.get("prefix") || "";
  const page = await api("GET", "/api/v1/workflows", { query: { name_prefix: prefix, page_size: 200 } });
  const search = h("form", { class: "filters", role: "search", "aria-label": "Filter workflows" },
    h("label", {}, "Name starts with", h("input", { name: "prefix", value: prefix })),
    h("button", { type: "submit", class: "primary" }, "Apply"));
  search.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = new FormData(search).get("prefix");
    location.hash = value ? `#/workflows?prefix=${encodeURIComponent(value)}` : "#/workflows";
  });
  view.append(h("h1", {}, "Workflows"), search,
    page.workflows.length === 0 ? h("p", { class: "muted" }, "No workflows yet: create one with POST /api/v1/workflows.") :
      h("table", { "aria-label": "Workflows" },
        h("thead", {}, h("tr", {}, ["Name", "Latest version", "Description", "Labels", "Updated"].map((name) => h("th", { scope: "col" }, name)))),
        h("tbody", {}, page.workflows.map((workflow) => h("tr", {},
          h("td", {}, h("a", { href: `#/workflows/${encodeURIComponent(workflow.name)}` }, workflow.name)),
          h("td", {}, `v${workflow.latest_version}`),
          h("td", {}, workflow.description || "—"),
          h("td", {}, Object.entries(workflow.labels || {}).map(([key, value]) => h("code", {}, `${key}=${value} `))),
          h("td", {}, time(workflow.version_created_at)))))));
}
