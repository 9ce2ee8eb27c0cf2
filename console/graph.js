// The run's DAG as an SVG: layered left to right (a task's column is the longest path
// to it from a root), each column ordered to keep edges short (barycentre sweeps),
// nodes coloured by status and labelled with their id and status. At 100 tasks the
// graph keeps its full-size labels and scrolls.

import { s } from "./ui.js";

const NODE_W = 150;
const NODE_H = 36;
const GAP_X = 56;
const GAP_Y = 10;
const PAD = 12;
const SWEEPS = 4;

/** Columns of task ids: [[roots...], [their dependants...], ...]. */
export function layers(tasks) {
  const byId = new Map(tasks.map((task) => [task.id, task]));
  const depth = new Map();
  const visit = (id, path = new Set()) => {
    if (depth.has(id)) return depth.get(id);
    if (path.has(id)) return 0; // a cycle cannot be in a valid definition; draw anyway
    path.add(id);
    const deps = (byId.get(id)?.depends_on || []).filter((dep) => byId.has(dep));
    const value = deps.length ? 1 + Math.max(...deps.map((dep) => visit(dep, path))) : 0;
    depth.set(id, value);
    return value;
  };
  const columns = [];
  for (const task of tasks) (columns[visit(task.id)] ||= []).push(task.id);
  const successors = new Map(tasks.map((task) => [task.id, []]));
  for (const task of tasks) for (const dep of task.depends_on || []) successors.get(dep)?.push(task.id);
  const position = new Map();
  const place = () => columns.forEach((column) => column.forEach((id, index) => position.set(id, index)));
  place();
  const centre = (ids) => ids.length ? ids.reduce((sum, id) => sum + position.get(id), 0) / ids.length : null;
  for (let sweep = 0; sweep < SWEEPS; sweep++) {
    const forward = sweep % 2 === 0;
    const order = forward ? columns.slice(1) : columns.slice(0, -1).reverse();
    for (const column of order) {
      const weight = new Map(column.map((id) => {
        const neighbours = forward ? byId.get(id).depends_on || [] : successors.get(id);
        return [id, centre(neighbours.filter((other) => position.has(other))) ?? position.get(id)];
      }));
      column.sort((a, b) => weight.get(a) - weight.get(b));
      column.forEach((id, index) => position.set(id, index));
    }
  }
  return columns;
}

function truncate(text, size) {
  return text.length > size ? `${text.slice(0, size - 1)}…` : text;
}

/**
 * The DAG as an <svg>. `statusOf(id)` colours a node; `onSelect(id)` is called on click
 * or Enter/Space; `selected` is outlined.
 */
export function drawGraph(tasks, { statusOf, onSelect, selected }) {
  const columns = layers(tasks);
  const tallest = Math.max(1, ...columns.map((column) => column.length));
  const height = PAD * 2 + tallest * (NODE_H + GAP_Y) - GAP_Y;
  const width = PAD * 2 + columns.length * (NODE_W + GAP_X) - GAP_X;
  const at = new Map();
  columns.forEach((column, x) => {
    const top = (height - (column.length * (NODE_H + GAP_Y) - GAP_Y)) / 2;
    column.forEach((id, y) => at.set(id, { x: PAD + x * (NODE_W + GAP_X), y: top + y * (NODE_H + GAP_Y) }));
  });
  const edges = s("g", { "aria-hidden": "true" });
  for (const task of tasks) {
    for (const dep of task.depends_on || []) {
      const from = at.get(dep);
      const to = at.get(task.id);
      if (!from || !to) continue;
      const x1 = from.x + NODE_W, y1 = from.y + NODE_H / 2, x2 = to.x, y2 = to.y + NODE_H / 2;
      const bend = Math.max(20, (x2 - x1) / 2);
      edges.append(s("path", { class: "edge", d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}` }));
    }
  }
  const nodes = s("g", {});
  for (const task of tasks) {
    const { x, y } = at.get(task.id);
    const status = statusOf(task.id) || "waiting";
    const node = s("g", {
      class: `node${task.id === selected ? " selected" : ""}`,
      transform: `translate(${x},${y})`,
      tabindex: 0,
      role: "button",
      "aria-label": `Task ${task.id}: ${status.replace("_", " ")}`,
      "data-task": task.id,
    },
    s("title", {}, `${task.id} (${task.type}): ${status}`),
    s("rect", { width: NODE_W, height: NODE_H, rx: 6, class: `n-${status}` }),
    s("text", { x: 8, y: 15 }, truncate(task.id, 20)),
    s("text", { x: 8, y: 29, class: "sub" }, `${task.type} · ${status.replace("_", " ")}`));
    node.addEventListener("click", () => onSelect(task.id));
    node.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); onSelect(task.id); }
    });
    nodes.append(node);
  }
  return s("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, role: "group",
    "aria-label": `Task graph: ${tasks.length} tasks in ${columns.length} columns`,
  }, edges, nodes);
}
