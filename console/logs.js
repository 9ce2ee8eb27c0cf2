// Live task logs from the metadata service (issue 14's routes): the lines so far, then
// the Server-Sent Events stream (GET /api/v1/executions/{run_id}/logs/stream), which
// resumes by itself from the last event id; filtered by task and level.

import { api, isMissing } from "./api.js";
import { h, unavailable } from "./ui.js";

const LEVELS = ["debug", "info", "warning", "error"];

function lineText(line) {
  const at = line.time ? new Date(line.time).toISOString().slice(11, 23) : "";
  return `${at} ${line.task_id ?? ""}#${line.attempt ?? ""} ${(line.level || "").toUpperCase()} ${line.message}\n`;
}

/** The log section of a run page; returns {element, stop}. */
export function logPanel(runId, taskIds) {
  const output = h("pre", { class: "log", role: "log", "aria-label": "Task log", tabindex: 0 });
  const state = h("p", { class: "hint", "aria-live": "polite" });
  const task = h("select", { id: "log-task" }, h("option", { value: "" }, "all tasks"),
    taskIds.map((id) => h("option", { value: id }, id)));
  const level = h("select", { id: "log-level" }, h("option", { value: "" }, "all levels"),
    LEVELS.map((name) => h("option", { value: name }, `${name} and above`)));
  const follow = h("input", { type: "checkbox", id: "log-follow", checked: true });
  let source = null;

  const append = (line) => {
    output.append(h("span", { class: `lvl-${line.level}` }, lineText(line)));
    if (follow.checked) output.scrollTop = output.scrollHeight;
  };

  async function open() {
    if (source) source.close();
    output.replaceChildren();
    output.hidden = false;
    const query = { task_id: task.value, level: level.value };
    try {
      await api("GET", `/api/v1/executions/${encodeURIComponent(runId)}/logs`, { query: { ...query, limit: 1 } });
    } catch (error) {
      state.replaceChildren(isMissing(error) ? unavailable("Task logs (the metadata service)") : error.message);
      output.hidden = true;
      return;
    }
    const params = new URLSearchParams(Object.entries(query).filter(([, value]) => value));
    source = new EventSource(`/api/v1/executions/${encodeURIComponent(runId)}/logs/stream?${params}`);
    state.textContent = "Following the log…";
    source.onmessage = (event) => {
      try { append(JSON.parse(event.data)); } catch { append({ message: event.data }); }
    };
    source.addEventListener("end", () => { state.textContent = "End of log."; source.close(); });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) state.textContent = "The log stream stopped; choose a filter to open it again.";
    };
  }

  task.addEventListener("change", open);
  level.addEventListener("change", open);
  const element = h("section", { "aria-labelledby": "logs-title" },
    h("h2", { id: "logs-title" }, "Logs"),
    h("div", { class: "filters" },
      h("label", { for: "log-task" }, "Task", task),
      h("label", { for: "log-level" }, "Level", level),
      h("span", {}, follow, h("label", { for: "log-follow", class: "check" }, " Follow"))),
    state, output);
  open();
  return { element, stop: () => source?.close(), showTask: (id) => { task.value = id; open(); } };
}
