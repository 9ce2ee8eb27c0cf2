// Dead letters: tasks that used up their retries, with their errors (GET
// /api/v1/dead-letters); an operator replays one (a fresh retry budget) or discards it.

import { api, can } from "../api.js";
import { confirmAction, errorBox, h, shortId, time, toast } from "../ui.js";

export async function render(view, _params, query) {
  const list = h("div", { "aria-live": "polite" });
  const pager = h("div", { class: "actions" });
  const tokens = [undefined];

  async function act(letter, replay) {
    const answer = await confirmAction(replay
      ? { title: "Replay this task?", text: `Task ${letter.task_id} of run ${letter.run_id} runs again with a fresh retry budget, and its run resumes.`, action: "Replay" }
      : { title: "Discard this dead letter?", text: `The letter goes; task ${letter.task_id} stays dead-lettered in its run.`, action: "Discard", danger: true });
    if (!answer) return;
    try {
      const path = `/api/v1/dead-letters/${encodeURIComponent(letter.id)}`;
      if (replay) await api("POST", `${path}/replay`);
      else await api("DELETE", path);
      toast(replay ? "Replayed." : "Discarded.");
      load();
    } catch (error) {
      list.prepend(errorBox(error));
    }
  }

  async function load() {
    const page = await api("GET", "/api/v1/dead-letters", {
      query: { run_id: query.get("run_id"), page_size: 50, page_token: tokens[tokens.length - 1] },
    });
    list.replaceChildren(page.items.length === 0 ? h("p", { class: "muted" }, "No dead letters.") :
      h("table", { "aria-label": "Dead letters" },
        h("thead", {}, h("tr", {}, ["Task", "Run", "Error", "Attempts", "Created", ""].map((name) => h("th", { scope: "col" }, name)))),
        h("tbody", {}, page.items.map((letter) => h("tr", {},
          h("td", {}, h("code", {}, letter.task_id), h("div", { class: "hint" }, letter.task_type)),
          h("td", {}, h("a", { href: `#/runs/${encodeURIComponent(letter.run_id)}`, title: letter.run_id }, shortId(letter.run_id))),
          h("td", {}, h("strong", {}, letter.error_type), ": ", letter.error_message,
            letter.traceback_excerpt ? h("details", {}, h("summary", {}, "Traceback"), h("pre", {}, letter.traceback_excerpt)) : null),
          h("td", {}, String(letter.attempts)),
          h("td", {}, time(letter.created_at)),
          h("td", {}, can("operator") ? h("div", { class: "actions" },
            h("button", { type: "button", onclick: () => act(letter, true), "aria-label": `Replay ${letter.task_id}` }, "Replay"),
            h("button", { type: "button", class: "danger", onclick: () => act(letter, false), "aria-label": `Discard ${letter.task_id}` }, "Discard")) : null))))));
    pager.replaceChildren(
      h("button", { type: "button", disabled: tokens.length === 1, onclick: () => { tokens.pop(); load(); } }, "Newer"),
      h("button", { type: "button", disabled: !page.next_page_token, onclick: () => { tokens.push(page.next_page_token); load(); } }, "Older"));
  }

  view.append(h("h1", {}, "Dead letters"), list, pager);
  await load();
}
