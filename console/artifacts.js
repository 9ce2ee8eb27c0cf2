// A run's artifacts from the artifact service (issue 16's routes), each downloaded
// through a pre-signed URL (GET /api/v1/artifacts/{id}/url).

import { api, isMissing } from "./api.js";
import { errorBox, h, time, unavailable } from "./ui.js";

function size(bytes) {
  if (bytes === undefined || bytes === null) return "—";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1048576) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

async function download(artifact) {
  try {
    const signed = await api("GET", `/api/v1/artifacts/${encodeURIComponent(artifact.artifact_id)}/url`, { query: { expires_in: 300 } });
    location.assign(signed.url);
  } catch {
    location.assign(`/api/v1/artifacts/${encodeURIComponent(artifact.artifact_id)}/content`);
  }
}

/** The artifacts section of a run page. */
export async function artifactPanel(runId) {
  const section = h("section", { "aria-labelledby": "artifacts-title" }, h("h2", { id: "artifacts-title" }, "Artifacts"));
  try {
    const page = await api("GET", "/api/v1/artifacts", { query: { run_id: runId, page_size: 100 } });
    const items = page.artifacts || [];
    if (!items.length) { section.append(h("p", { class: "muted" }, "No artifacts.")); return section; }
    section.append(h("table", { "aria-label": "Artifacts" },
      h("thead", {}, h("tr", {}, ["Name", "Task", "Size", "Created", ""].map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, items.map((artifact) => h("tr", {},
        h("td", {}, artifact.name), h("td", {}, artifact.task_id || "—"), h("td", {}, size(artifact.size_bytes)),
        h("td", {}, time(artifact.created_at)),
        h("td", {}, h("button", { type: "button", onclick: () => download(artifact), "aria-label": `Download ${artifact.name}` }, "Download")))))));
  } catch (error) {
    section.append(isMissing(error) ? unavailable("Artifacts (the artifact service)") : errorBox(error));
  }
  return section;
}
