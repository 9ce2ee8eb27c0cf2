// Overview of the last 24 hours: runs by status, success rate, p95 duration by
// workflow, and the dead-letter queue's depth. From the metadata summary (issue 14's
// GET /api/v1/executions/summary) when it answers, else from the runs themselves.

import { api } from "../api.js";
import { duration, h } from "../ui.js";

const DAY_MS = 24 * 3600 * 1000;
const MAX_RUNS = 1000;
const STATUSES = ["pending", "running", "paused", "succeeded", "failed", "cancelled"];

function percentile(values, fraction) {
  if (!values.length) return null;
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)];
}

/** Per workflow: {workflow, counts: {status: n}, p95_ms}; from the metadata summary. */
async function fromSummary(since) {
  const summary = await api("GET", "/api/v1/executions/summary", { query: { created_after: since } });
  return (summary.workflows || []).map((item) => ({
    workflow: item.workflow,
    counts: item.runs_by_status || item.by_status || {},
    p95_ms: item.duration_ms?.p95 ?? item.p95_ms ?? null,
  }));
}

/** The same, counted from GET /api/v1/runs (at most MAX_RUNS runs). */
async function fromRuns(since) {
  const byWorkflow = new Map();
  let token;
  let seen = 0;
  do {
    const page = await api("GET", "/api/v1/runs", { query: { created_after: since, page_size: 200, page_token: token } });
    for (const run of page.runs) {
      const entry = byWorkflow.get(run.workflow) || { workflow: run.workflow, counts: {}, durations: [] };
      entry.counts[run.status] = (entry.counts[run.status] || 0) + 1;
      if (run.finished_at) entry.durations.push(Date.parse(run.finished_at) - Date.parse(run.created_at));
      byWorkflow.set(run.workflow, entry);
    }
    seen += page.runs.length;
    token = page.next_page_token;
  } while (token && seen < MAX_RUNS);
  return [...byWorkflow.values()].map((entry) => ({ ...entry, p95_ms: percentile(entry.durations, 0.95) }));
}

async function deadLetterDepth() {
  const page = await api("GET", "/api/v1/dead-letters", { query: { page_size: 100 } });
  return `${page.items.length}${page.next_page_token ? "+" : ""}`;
}

export async function render(view) {
  const since = new Date(Date.now() - DAY_MS).toISOString();
  let rows;
  let source = "the metadata summary";
  try { rows = await fromSummary(since); } catch {
    rows = await fromRuns(since);
    source = "the runs of the last 24 h";
  }
  const total = {};
  for (const row of rows) for (const [status, count] of Object.entries(row.counts)) total[status] = (total[status] || 0) + count;
  const ended = (total.succeeded || 0) + (total.failed || 0) + (total.cancelled || 0);
  const rate = ended ? `${((100 * (total.succeeded || 0)) / ended).toFixed(1)} %` : "—";
  const card = (label, value) => h("div", { class: "card" }, h("div", { class: "hint" }, label), h("div", { class: "value" }, value));
  view.append(
    h("h1", {}, "Overview"),
    h("p", { class: "hint" }, `Last 24 hours, from ${source}.`),
    h("div", { class: "cards" },
      card("Runs", String(Object.values(total).reduce((a, b) => a + b, 0))),
      card("Success rate", rate),
      card("Dead letters", await deadLetterDepth())),
    h("div", { class: "counts", "aria-label": "Runs by status" },
      STATUSES.filter((name) => total[name]).map((name) => h("span", { class: `badge st-${name}` }, `${name} ${total[name]}`))),
    h("h2", {}, "By workflow"),
    rows.length === 0 ? h("p", { class: "muted" }, "No runs in the last 24 hours.") :
      h("table", { "aria-label": "Runs by workflow" },
        h("thead", {}, h("tr", {}, ["Workflow", ...STATUSES, "p95 duration"].map((name) => h("th", { scope: "col" }, name)))),
        h("tbody", {}, rows.map((row) => h("tr", {},
          h("td", {}, h("a", { href: `#/runs?workflow=${encodeURIComponent(row.workflow)}` }, row.workflow)),
          STATUSES.map((name) => h("td", {}, String(row.counts[name] || 0))),
          h("td", {}, duration(row.p95_ms)))))));
}
