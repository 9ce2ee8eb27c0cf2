// One workflow: its versions, a version's definition as highlighted YAML, the diff
// between two versions, and a form that starts a run with the latest version.

import { api, can } from "../api.js";
import { inputFields } from "../schema_form.js";
import { diffBlock, yamlBlock } from "../yaml.js";
import { errorBox, h, time } from "../ui.js";

function startForm(workflow) {
  const fields = inputFields(workflow.definition.input_schema);
  const status = h("div", { "aria-live": "assertive" });
  const idempotencyKey = crypto.randomUUID();
  const form = h("form", { "aria-labelledby": "start-title" },
    h("h2", { id: "start-title" }, `Start a run of v${workflow.latest_version}`),
    fields.element, status,
    h("p", {}, h("button", { type: "submit", class: "primary" }, "Start run")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.replaceChildren();
    let input;
    try { input = fields.read(); } catch (error) {
      status.replaceChildren(errorBox({ problem: { title: "Check the input", detail: error.message } }));
      return;
    }
    try {
      // One key per form: a double click starts one run, not two.
      const run = await api("POST", `/api/v1/workflows/${encodeURIComponent(workflow.name)}/runs`,
        { body: { input }, headers: { "idempotency-key": idempotencyKey } });
      location.hash = `#/runs/${encodeURIComponent(run.run_id)}`;
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  });
  return form;
}

async function everyVersion(path) {
  const versions = [];
  let token = null;
  do {
    const page = await api("GET", `${path}/versions`, { query: { page_size: 500, page_token: token } });
    versions.push(...page.versions);
    token = page.next_page_token;
  } while (token);
  return versions;
}

export async function render(view, { name }) {
  const path = `/api/v1/workflows/${encodeURIComponent(name)}`;
  const [workflow, versions] = await Promise.all([api("GET", path), everyVersion(path)]);
  const byNumber = new Map(versions.map((version) => [version.version, version]));
  const shown = h("div");
  const diff = h("div");
  const choose = (id, label, selected) => h("label", {}, label, h("select", { id },
    versions.map((version) => h("option", { value: version.version, selected: version.version === selected }, `v${version.version}`))));
  const viewPicker = choose("show-version", "Version", workflow.version);
  const fromPicker = choose("diff-from", "From", Math.max(1, workflow.version - 1));
  const toPicker = choose("diff-to", "To", workflow.version);

  const showVersion = () => {
    const version = byNumber.get(Number(viewPicker.querySelector("select").value));
    shown.replaceChildren(yamlBlock(version.definition, `Definition of v${version.version}`));
  };
  const showDiff = () => {
    const from = byNumber.get(Number(fromPicker.querySelector("select").value));
    const to = byNumber.get(Number(toPicker.querySelector("select").value));
    diff.replaceChildren(diffBlock(from.definition, to.definition, `Changes from v${from.version} to v${to.version}`));
  };
  viewPicker.addEventListener("change", showVersion);
  fromPicker.addEventListener("change", showDiff);
  toPicker.addEventListener("change", showDiff);

  view.append(
    h("h1", {}, "Workflow ", h("code", {}, workflow.name)),
    h("p", {}, workflow.description || ""),
    h("p", {}, h("a", { href: `#/runs?workflow=${encodeURIComponent(workflow.name)}` }, "Runs of this workflow")),
    workflow.archived ? h("p", { class: "error-box" }, "Archived: no new runs.") :
      can("developer") ? startForm(workflow) : null,
    h("h2", {}, "Versions"),
    h("table", { "aria-label": "Versions" },
      h("thead", {}, h("tr", {}, ["Version", "Created", "By", "Content hash"].map((title) => h("th", { scope: "col" }, title)))),
      h("tbody", {}, versions.slice().reverse().map((version) => h("tr", {},
        h("td", {}, `v${version.version}`), h("td", {}, time(version.version_created_at)),
        h("td", {}, version.version_created_by), h("td", {}, h("code", {}, version.content_hash.slice(0, 12))))))),
    h("h2", {}, "Definition"), h("div", { class: "filters" }, viewPicker), shown,
    h("h2", {}, "Compare versions"), h("div", { class: "filters" }, fromPicker, toPicker), diff);
  showVersion();
  showDiff();
}
