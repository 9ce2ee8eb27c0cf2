// The timeline of every attempt: one row per task, one bar per attempt, its queue wait
// (scheduled → started) pale and its running time (started → finished) coloured by
// its outcome; retries show as several bars on one row.

import { s } from "./ui.js";

const LABEL_W = 170;
const ROW_H = 22;
const BAR_H = 14;
const AXIS_H = 22;
const TICKS = 6;

function ms(value) {
  return value ? Date.parse(value) : null;
}

/**
 * `rows`: [{id, attempts: [{attempt, scheduled_at, started_at, finished_at, status}]}].
 * Unfinished attempts run to `now`.
 */
export function drawGantt(rows, { width = 960, now = Date.now() } = {}) {
  const times = rows.flatMap((row) => row.attempts.flatMap((a) => [ms(a.scheduled_at), ms(a.started_at), ms(a.finished_at)]))
    .filter((value) => value !== null);
  const height = AXIS_H + rows.length * ROW_H + 4;
  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `Timeline of ${rows.length} tasks` });
  if (!times.length) return svg;
  const start = Math.min(...times);
  const end = Math.max(now, ...times);
  const span = Math.max(1, end - start);
  const scale = (value) => LABEL_W + ((value - start) / span) * (width - LABEL_W - 8);
  const axis = s("g", { class: "axis" });
  for (let tick = 0; tick <= TICKS; tick++) {
    const x = LABEL_W + (tick / TICKS) * (width - LABEL_W - 8);
    const offset = (tick / TICKS) * span;
    axis.append(s("line", { x1: x, x2: x, y1: AXIS_H - 4, y2: height }),
      s("text", { x: tick === TICKS ? x - 2 : x + 2, y: 12, "text-anchor": tick === TICKS ? "end" : "start" }, offset < 1000 ? `${Math.round(offset)} ms` : `${(offset / 1000).toFixed(1)} s`));
  }
  svg.append(axis);
  rows.forEach((row, index) => {
    const y = AXIS_H + index * ROW_H;
    const group = s("g", {}, s("text", { x: 4, y: y + 14 }, row.id.length > 22 ? `${row.id.slice(0, 21)}…` : row.id));
    for (const attempt of row.attempts) {
      const queued = ms(attempt.scheduled_at);
      const started = ms(attempt.started_at);
      const finished = ms(attempt.finished_at) ?? now;
      if (queued !== null) {
        const until = started ?? finished;
        group.append(s("rect", { x: scale(queued), y: y + 4, width: Math.max(1, scale(until) - scale(queued)), height: BAR_H, class: "n-waiting" },
          s("title", {}, `${row.id} attempt ${attempt.attempt}: waited ${Math.round(until - queued)} ms`)));
      }
      if (started !== null) {
        group.append(s("rect", { x: scale(started), y: y + 4, width: Math.max(2, scale(finished) - scale(started)), height: BAR_H, class: `n-${attempt.status}` },
          s("title", {}, `${row.id} attempt ${attempt.attempt}: ${attempt.status}, ran ${Math.round(finished - started)} ms`)));
      }
    }
    svg.append(group);
  });
  return svg;
}
