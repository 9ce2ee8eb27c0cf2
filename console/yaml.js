// Definitions as highlighted YAML, and a line diff between two of them.

import { h } from "./ui.js";

const PLAIN = /^[A-Za-z_][\w./-]*$/;
const DIFF_MAX_CELLS = 4_000_000;

function scalar(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") {
    const ambiguous = /^(true|false|null|yes|no|on|off|~|[-+]?[\d.]+(e[-+]?\d+)?)$/i.test(value);
    return PLAIN.test(value) && !ambiguous ? value : JSON.stringify(value);
  }
  return String(value);
}

/** A JSON value as block-style YAML lines. */
export function toYaml(value, indent = "") {
  if (Array.isArray(value)) {
    if (!value.length) return [`${indent}[]`];
    return value.flatMap((item) => {
      const lines = toYaml(item, `${indent}  `);
      const first = lines[0].slice(indent.length + 2);
      return [`${indent}- ${first}`, ...lines.slice(1)];
    });
  }
  if (value && typeof value === "object") {
    const entries = Object.entries(value);
    if (!entries.length) return [`${indent}{}`];
    return entries.flatMap(([key, item]) => {
      const name = `${indent}${scalar(key)}:`;
      if (item && typeof item === "object" && Object.keys(item).length) {
        return [name, ...toYaml(item, `${indent}  `)];
      }
      return [`${name} ${toYaml(item, "")[0]}`];
    });
  }
  return [`${indent}${scalar(value)}`];
}

const LINE = /^(\s*)(- )?(?:("[^"]*"|[^\s:"][^:]*)(:)(?=\s|$))?\s?(.*)$/;

function valueSpan(text) {
  if (!text) return null;
  if (/^(true|false|null)$/.test(text)) return h("span", { class: "y-lit" }, text);
  if (/^[-+]?\d/.test(text) && !Number.isNaN(Number(text))) return h("span", { class: "y-num" }, text);
  if (text === "[]" || text === "{}") return text;
  return h("span", { class: "y-str" }, text);
}

/** One YAML line as highlighted spans. */
export function highlight(line) {
  const match = LINE.exec(line);
  if (!match) return [line];
  const [, space, dash, key, colon, rest] = match;
  return [space, dash ? h("span", { class: "y-dash" }, dash) : null,
    key ? h("span", { class: "y-key" }, key) : null, colon ? `${colon} ` : null, valueSpan(rest)];
}

/** A definition as a highlighted <pre>. */
export function yamlBlock(definition, label) {
  return h("pre", { "aria-label": label, tabindex: 0 },
    toYaml(definition).map((line) => [highlight(line), "\n"]));
}

/** [kind, line] pairs ("same", "del", "add") turning `before` into `after`, or null if too big. */
export function diffLines(before, after) {
  const n = before.length, m = after.length;
  if (n * m > DIFF_MAX_CELLS) return null;
  const width = m + 1;
  const common = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      common[i * width + j] = before[i] === after[j]
        ? common[(i + 1) * width + j + 1] + 1
        : Math.max(common[(i + 1) * width + j], common[i * width + j + 1]);
    }
  }
  const out = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (before[i] === after[j]) { out.push(["same", before[i]]); i++; j++; }
    else if (common[(i + 1) * width + j] >= common[i * width + j + 1]) out.push(["del", before[i++]]);
    else out.push(["add", after[j++]]);
  }
  while (i < n) out.push(["del", before[i++]]);
  while (j < m) out.push(["add", after[j++]]);
  return out;
}

/** The diff of two definitions as a <pre>: removed lines marked "-", added "+". */
export function diffBlock(before, after, label) {
  const lines = diffLines(toYaml(before), toYaml(after));
  if (lines === null) return h("p", { class: "muted" }, "These versions are too large to compare here.");
  const changed = lines.filter(([kind]) => kind !== "same").length;
  return h("div", {},
    h("p", { class: "hint" }, changed ? `${changed} lines changed.` : "No difference."),
    h("pre", { class: "diff", "aria-label": label, tabindex: 0 },
      lines.map(([kind, line]) => h("span", { class: kind }, `${kind === "add" ? "+" : kind === "del" ? "-" : " "} ${line}\n`))));
}
