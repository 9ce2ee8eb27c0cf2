// One run: its DAG coloured by task status, the timeline of every attempt, the
// selected task's details, logs and artifacts, and the actions the user's role allows
// (each confirmed first). Refreshed every 2 s until the run ends; the artifacts again
// whenever the run's status changes (a task stores its artifacts as it ends).

import { api, ApiError, can } from "../api.js";
import { artifactPanel } from "../artifacts.js";
import { drawGantt } from "../gantt.js";
import { drawGraph, layers } from "../graph.js";
import { logPanel } from "../logs.js";
import { badge, between, confirmAction, duration, errorBox, h, time, toast } from "../ui.js";

const REFRESH_MS = 2000;
const ENDED = new Set(["succeeded", "failed", "cancelled"]);
const TASK_ENDED = new Set(["succeeded", "failed", "dead_lettered", "cancelled", "skipped"]);
const ACTIONS = [
  // action, label, run statuses that allow it, whether it is destructive
  ["retry", "Retry failed tasks", ["failed"], false],
  ["pause", "Pause", ["pending", "running"], false],
  ["resume", "Resume", ["paused"], false],
  ["cancel", "Cancel run", ["pending", "running", "paused"], true],
];
const SECRET_KEY = /pass(word)?|secret|token|api[_-]?key|authorization|credential/i;

/** Params with the values of secret-looking keys hidden. */
export function redact(value) {
  if (Array.isArray(value)) return value.map(redact);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) =>
      [key, SECRET_KEY.test(key) && typeof item !== "object" ? "••••••" : redact(item)]));
  }
  return value;
}

/** The attempts metadata recorded for a task (issue 14's execution document), or null. */
function recordedAttempts(execution, taskId) {
  const tasks = execution?.tasks;
  if (!tasks) return null;
  const task = Array.isArray(tasks) ? tasks.find((item) => (item.task_id ?? item.id) === taskId) : tasks[taskId];
  if (!task?.attempts?.length) return null;
  return task.attempts.map((item, index) => ({
    attempt: item.attempt ?? index + 1,
    scheduled_at: item.scheduled_at,
    started_at: item.started_at,
    finished_at: item.finished_at,
    status: item.outcome || item.status || "running",
    worker_id: item.worker_id,
    error: item.error || (item.error_type ? { type: item.error_type, message: item.error_message } : null),
  }));
}

function attemptsOf(task, execution) {
  return recordedAttempts(execution, task.id) || (task.scheduled_at || task.started_at ? [{
    attempt: task.attempts || 1, scheduled_at: task.scheduled_at, started_at: task.started_at,
    finished_at: task.finished_at, status: task.status,
  }] : []);
}

function json(value) {
  return h("pre", {}, JSON.stringify(value, null, 2));
}

export async function render(view, { runId }) {
  let run = await api("GET", `/api/v1/runs/${encodeURIComponent(runId)}`);
  const version = await api("GET", `/api/v1/workflows/${encodeURIComponent(run.workflow)}/versions/${run.version}`);
  const definitionTasks = version.definition.tasks || [];
  const order = layers(definitionTasks).flat();
  const specs = new Map(definitionTasks.map((task) => [task.id, task]));
  let execution = null;
  let selected = null;

  const header = h("div");
  const actions = h("div", { class: "actions", role: "group", "aria-label": "Run actions" });
  const graph = h("div", { class: "scroll" });
  const gantt = h("div", { class: "scroll" });
  const panel = h("aside", { class: "panel", "aria-labelledby": "task-title", "aria-live": "polite" });
  const tasksById = () => new Map(run.tasks.map((task) => [task.id, task]));
  const logs = logPanel(runId, order);

  async function act(action, label, danger) {
    const answer = await confirmAction({
      title: `${label}?`, text: `Run ${run.run_id} of ${run.workflow} is ${run.status}.`,
      action: label, danger, reason: true,
    });
    if (!answer) return;
    try {
      run = await api("POST", `/api/v1/runs/${encodeURIComponent(runId)}/${action}`, { body: { reason: answer.reason } });
      toast(`${label}: done.`);
      draw();
    } catch (error) {
      actions.after(errorBox(error));
    }
  }

  async function timer(task, change) {
    const path = `/api/v1/runs/${encodeURIComponent(runId)}/tasks/${encodeURIComponent(task)}/timer`;
    try {
      if (change === null) await api("DELETE", path);
      else await api("PATCH", path, { body: { due_at: change } });
      toast(change === null ? "Timer cancelled." : "Timer moved.");
    } catch (error) {
      panel.append(errorBox(error));
    }
  }

  function drawHeader() {
    header.replaceChildren(
      h("h1", {}, "Run ", h("code", {}, run.run_id), " ", badge(run.status)),
      h("dl", { class: "meta" },
        h("dt", {}, "Workflow"), h("dd", {}, h("a", { href: `#/workflows/${encodeURIComponent(run.workflow)}` }, run.workflow), ` v${run.version}`),
        h("dt", {}, "Created"), h("dd", {}, time(run.created_at)),
        h("dt", {}, "Finished"), h("dd", {}, time(run.finished_at)),
        h("dt", {}, "Duration"), h("dd", {}, duration(between(run.created_at, run.finished_at))),
        h("dt", {}, "Input"), h("dd", {}, h("code", {}, JSON.stringify(run.input)))));
    actions.replaceChildren(...(can("operator") ? ACTIONS.filter(([, , allowed]) => allowed.includes(run.status))
      .map(([action, label, , danger]) => h("button", {
        type: "button", class: danger ? "danger" : "", "data-action": action,
        onclick: () => act(action, label, danger),
      }, label)) : []));
  }

  function drawPanel() {
    if (!selected) {
      panel.replaceChildren(h("h2", { id: "task-title" }, "Task"), h("p", { class: "muted" }, "Choose a task in the graph (Tab, then Enter) to see its details."));
      return;
    }
    const spec = specs.get(selected) || { id: selected };
    const task = tasksById().get(selected) || { id: selected, status: "pending", attempts: 0 };
    const attempts = recordedAttempts(execution, selected);
    const error = task.error;
    const parts = [
      h("h2", { id: "task-title" }, "Task ", h("code", {}, selected), " ", badge(task.status)),
      h("dl", { class: "meta" },
        h("dt", {}, "Type"), h("dd", {}, spec.type || "—"),
        h("dt", {}, "Depends on"), h("dd", {}, (spec.depends_on || []).join(", ") || "—"),
        h("dt", {}, "Attempts"), h("dd", {}, String(task.attempts ?? 0)),
        h("dt", {}, "Scheduled"), h("dd", {}, time(task.scheduled_at)),
        h("dt", {}, "Started"), h("dd", {}, time(task.started_at)),
        h("dt", {}, "Finished"), h("dd", {}, time(task.finished_at)),
        h("dt", {}, "Ran for"), h("dd", {}, duration(between(task.started_at, task.finished_at)))),
      h("h3", {}, "Params"), json(redact(spec.params ?? spec.executor?.params ?? {})),
    ];
    if (task.output !== undefined && task.output !== null) parts.push(h("h3", {}, "Output"), json(task.output));
    if (error) {
      parts.push(h("h3", {}, "Error"), h("div", { class: "error-box", "data-testid": "task-error" },
        h("strong", {}, error.type || "Error"), ": ", error.message || "",
        error.retryable === undefined ? null : h("div", { class: "hint" }, error.retryable ? "retryable" : "not retryable")));
      if (error.traceback) parts.push(h("details", { open: true }, h("summary", {}, "Traceback"), h("pre", {}, error.traceback)));
    }
    if (attempts) {
      parts.push(h("h3", {}, "Attempts"), h("table", {},
        h("thead", {}, h("tr", {}, ["#", "Outcome", "Worker", "Waited", "Ran", "Error"].map((name) => h("th", { scope: "col" }, name)))),
        h("tbody", {}, attempts.map((item) => h("tr", {},
          h("td", {}, String(item.attempt)), h("td", {}, badge(item.status)), h("td", {}, item.worker_id || "—"),
          h("td", {}, duration(between(item.scheduled_at, item.started_at))),
          h("td", {}, duration(between(item.started_at, item.finished_at))),
          h("td", {}, item.error ? `${item.error.type}: ${item.error.message}` : "—"))))));
    }
    if (spec.type === "delay" && !TASK_ENDED.has(task.status) && can("operator")) {
      const when = h("input", { type: "datetime-local", id: "timer-at" });
      parts.push(h("h3", {}, "Timer"), h("div", { class: "actions" },
        h("label", { for: "timer-at", class: "check" }, "Fire at "), when,
        h("button", { type: "button", onclick: () => when.value && timer(selected, new Date(when.value).toISOString()) }, "Move timer"),
        h("button", { type: "button", onclick: () => timer(selected, new Date().toISOString()) }, "Fire now"),
        h("button", { type: "button", class: "danger", onclick: async () => {
          if (await confirmAction({ title: "Cancel the timer?", text: "The task is skipped and the run continues.", action: "Cancel timer", danger: true })) timer(selected, null);
        } }, "Cancel timer")));
    }
    parts.push(h("p", {}, h("button", { type: "button", onclick: () => logs.showTask(selected) }, "Show this task's log")));
    panel.replaceChildren(...parts);
  }

  function select(id) {
    selected = id;
    drawGraphOnly();
    drawPanel();
    graph.querySelector(`[data-task="${CSS.escape(id)}"]`)?.focus();
  }

  function drawGraphOnly() {
    const statuses = tasksById();
    graph.replaceChildren(drawGraph(definitionTasks, {
      statusOf: (id) => statuses.get(id)?.status || "pending", onSelect: select, selected,
    }));
  }

  function draw() {
    drawHeader();
    drawGraphOnly();
    const statuses = tasksById();
    const rows = order.map((id) => ({ id, attempts: attemptsOf(statuses.get(id) || { id }, execution) }))
      .filter((row) => row.attempts.length);
    gantt.replaceChildren(rows.length ? drawGantt(rows, { now: run.finished_at ? Date.parse(run.finished_at) : Date.now() })
      : h("p", { class: "muted" }, "No attempt has started yet."));
    drawPanel();
  }

  async function reload() {
    const statusBefore = run.status;
    try {
      run = await api("GET", `/api/v1/runs/${encodeURIComponent(runId)}`);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) toast(error.message);
      return;
    }
    try {
      execution = await api("GET", `/api/v1/executions/${encodeURIComponent(runId)}`);
    } catch {
      execution = null; // the metadata service has no document (yet): the run's own view
    }
    draw();
    if (run.status !== statusBefore) {
      const fresh = await artifactPanel(runId);
      artifacts.replaceWith(fresh);
      artifacts = fresh;
    }
  }

  let artifacts = await artifactPanel(runId);

  view.append(header, actions,
    h("div", { class: "legend", "aria-hidden": "true" },
      ["pending", "scheduled", "running", "retrying", "succeeded", "failed", "dead_lettered", "cancelled", "skipped"].map(badge)),
    h("div", { class: "row" },
      h("section", { class: "grow", "aria-labelledby": "graph-title" }, h("h2", { id: "graph-title" }, "Graph"), graph),
      panel),
    h("section", { "aria-labelledby": "timeline-title" }, h("h2", { id: "timeline-title" }, "Timeline"),
      h("p", { class: "hint" }, "Pale: waiting for a worker; coloured: running, by outcome; one bar per attempt."), gantt),
    logs.element,
    artifacts);
  await reload();
  const refresher = setInterval(() => {
    if (!document.hidden && !(ENDED.has(run.status) && run.finished_at)) reload();
  }, REFRESH_MS);
  return () => { clearInterval(refresher); logs.stop(); };
}
