// The console's shell: hash routes (#/runs/<id>), the navigation, signing in and out.
// Each page is a module whose render(main, params) draws into <main> and may return
// a function that stops what it started (timers, log streams) when the user leaves.

import { ApiError, loadSession, session, signOut } from "./api.js";
import { errorBox, h } from "./ui.js";

const ROUTES = [
  [/^\/sign-in$/, "sign_in", "Sign in"],
  [/^\/overview$/, "overview", "Overview"],
  [/^\/runs$/, "runs", "Runs"],
  [/^\/runs\/(?<runId>[^/]+)$/, "run", "Run"],
  [/^\/workflows$/, "workflows", "Workflows"],
  [/^\/workflows\/(?<name>[^/]+)$/, "workflow", "Workflow"],
  [/^\/dead-letters$/, "dead_letters", "Dead letters"],
  [/^\/notifications$/, "notifications", "Notifications"],
];

const main = document.getElementById("main");
let leave = null;
let generation = 0;

function currentPath() {
  const [path, query] = (location.hash.slice(1) || "/runs").split("?");
  return { path, query: new URLSearchParams(query || "") };
}

function showUser() {
  const signedIn = Boolean(session.user);
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("who").hidden = !signedIn;
  if (signedIn) {
    document.getElementById("who-name").textContent =
      `${session.user.tenant} · ${session.user.roles.join(", ")}`;
  }
}

function markNavigation(path) {
  for (const link of document.querySelectorAll("#nav a")) {
    const target = link.getAttribute("href").slice(1);
    if (path === target || path.startsWith(`${target}/`)) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function route() {
  const mine = ++generation;
  if (leave) { leave(); leave = null; }
  let { path, query } = currentPath();
  if (!session.user && path !== "/sign-in") {
    location.replace(`#/sign-in?next=${encodeURIComponent(path)}`);
    return;
  }
  const match = ROUTES.map(([pattern, page, title]) => [pattern.exec(path), page, title])
    .find(([found]) => found);
  if (!match) { location.replace("#/runs"); return; }
  const [found, page, title] = match;
  const params = Object.fromEntries(
    Object.entries(found.groups || {}).map(([key, value]) => [key, decodeURIComponent(value)]));
  document.title = `${title} · Interlock`;
  markNavigation(path);
  showUser();
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    const module = await import(`./pages/${page}.js`);
    if (mine !== generation) return;
    const view = h("div");
    const stop = await module.render(view, params, query);
    if (mine !== generation) { if (stop) stop(); return; }
    main.replaceChildren(view);
    leave = stop || null;
    main.focus({ preventScroll: true });
  } catch (error) {
    if (mine !== generation) return;
    if (error instanceof ApiError && error.status === 401) return;
    main.replaceChildren(h("h1", {}, title), errorBox(error));
  }
}

session.onSignedOut = () => {
  showUser();
  const { path } = currentPath();
  if (path !== "/sign-in") location.replace(`#/sign-in?next=${encodeURIComponent(path)}`);
};

document.getElementById("sign-out").addEventListener("click", async () => {
  try { await signOut(); } finally {
    showUser();
    location.replace("#/sign-in");
  }
});

window.addEventListener("hashchange", route);

loadSession().then(route, (error) => main.replaceChildren(errorBox(error)));
