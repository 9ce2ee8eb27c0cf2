// Runs: newest first, filtered by workflow, status and time (GET /api/v1/runs); a label
// or words to search go to the metadata search (GET /api/v1/executions). Status counts
// of what is listed; refreshed every few seconds while the box is ticked.

import { api, isMissing } from "../api.js";
import { badge, between, duration, errorBox, h, shortId, time, unavailable } from "../ui.js";

const STATUSES = ["pending", "running", "paused", "succeeded", "failed", "cancelled"];
const REFRESH_MS = 5000;
const PAGE_SIZE = 50;

function isoOrEmpty(local) {
  return local ? new Date(local).toISOString() : "";
}

function filterForm(query, onChange) {
  const input = (name, label, attrs = {}) => h("label", {}, label,
    h("input", { name, value: query.get(name) || "", ...attrs }));
  const status = h("select", { name: "status" },
    h("option", { value: "" }, "any"),
    STATUSES.map((name) => h("option", { value: name, selected: query.get("status") === name }, name)));
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter runs" },
    input("workflow", "Workflow", { size: 16 }),
    h("label", {}, "Status", status),
    input("after", "Created after", { type: "datetime-local" }),
    input("before", "Created before", { type: "datetime-local" }),
    input("label", "Label", { placeholder: "key=value", size: 14 }),
    input("q", "Search", { type: "search", placeholder: "words", size: 14 }),
    h("button", { type: "submit", class: "primary" }, "Apply"),
    h("button", { type: "reset" }, "Clear"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) params.set(key, value);
    onChange(params);
  });
  form.addEventListener("reset", () => setTimeout(() => onChange(new URLSearchParams())));
  return form;
}

async function fetchRuns(query, pageToken) {
  const search = query.get("label") || query.get("q");
  const common = {
    workflow: query.get("workflow"),
    status: query.get("status"),
    created_after: isoOrEmpty(query.get("after")),
    created_before: isoOrEmpty(query.get("before")),
    page_size: PAGE_SIZE,
    page_token: pageToken,
  };
  if (!search) {
    const page = await api("GET", "/api/v1/runs", { query: common });
    return { runs: page.runs, next: page.next_page_token };
  }
  const page = await api("GET", "/api/v1/executions", {
    query: { ...common, label: query.get("label"), q: query.get("q") },
  });
  const runs = (page.executions || page.items || []).map((doc) => ({
    run_id: doc.run_id, workflow: doc.workflow, version: doc.version, status: doc.status,
    created_at: doc.created_at, finished_at: doc.finished_at,
  }));
  return { runs, next: page.next_page_token };
}

function countsOf(runs) {
  const counts = {};
  for (const run of runs) counts[run.status] = (counts[run.status] || 0) + 1;
  return h("div", { class: "counts", "aria-label": "Runs listed by status" },
    Object.keys(counts).length === 0 ? h("span", { class: "muted" }, "No runs.") : null,
    STATUSES.filter((name) => counts[name]).map((name) =>
      h("span", { class: `badge st-${name}` }, `${name} ${counts[name]}`)));
}

function table(runs) {
  return h("table", { "aria-label": "Runs" },
    h("thead", {}, h("tr", {},
      ["Run", "Workflow", "Version", "Status", "Created", "Duration"].map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, runs.map((run) => h("tr", {},
      h("td", {}, h("a", { href: `#/runs/${encodeURIComponent(run.run_id)}`, title: run.run_id }, shortId(run.run_id))),
      h("td", {}, h("a", { href: `#/workflows/${encodeURIComponent(run.workflow)}` }, run.workflow)),
      h("td", {}, `v${run.version}`),
      h("td", {}, badge(run.status)),
      h("td", {}, time(run.created_at)),
      h("td", {}, duration(between(run.created_at, run.finished_at)))))));
}

export async function render(view, _params, query) {
  const tokens = [undefined];
  const results = h("div", { "aria-live": "polite" });
  const pager = h("div", { class: "actions" });
  const auto = h("input", { type: "checkbox", id: "auto-refresh", checked: true });

  async function load() {
    const token = tokens[tokens.length - 1];
    try {
      const { runs, next } = await fetchRuns(query, token);
      results.replaceChildren(countsOf(runs), runs.length ? table(runs) : "");
      pager.replaceChildren(
        h("button", { type: "button", disabled: tokens.length === 1, onclick: () => { tokens.pop(); load(); } }, "Newer"),
        h("button", { type: "button", disabled: !next, onclick: () => { tokens.push(next); load(); } }, "Older"));
    } catch (error) {
      results.replaceChildren(isMissing(error) && (query.get("label") || query.get("q"))
        ? unavailable("Search by label and words (the metadata service)") : errorBox(error));
    }
  }

  const form = filterForm(query, (params) => {
    const text = params.toString();
    location.hash = `#/runs${text ? `?${text}` : ""}`;
  });
  view.append(
    h("h1", {}, "Runs"),
    form,
    h("p", {}, auto, h("label", { for: "auto-refresh", class: "check" }, " Refresh every 5 s")),
    results, pager);
  await load();
  const timer = setInterval(() => {
    if (auto.checked && !document.hidden && tokens.length === 1) load();
  }, REFRESH_MS);
  return () => clearInterval(timer);
}
