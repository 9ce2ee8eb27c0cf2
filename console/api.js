// The REST API as the console uses it: every call goes through the gateway with the
// browser's session cookie (HttpOnly: scripts never see a token), and every change
// carries the session's CSRF token from the interlock_csrf cookie in x-interlock-csrf.
// An expired access cookie is renewed once (POST /api/v1/auth/session/refresh) and the
// call repeated; a session that cannot be renewed sends the user to the sign-in page.

const CSRF_COOKIE = "interlock_csrf";
const CSRF_HEADER = "x-interlock-csrf";
const SAFE = new Set(["GET", "HEAD"]);
const RANK = { viewer: 0, developer: 1, operator: 2, admin: 3 };

/** A refused call: its HTTP status and its problem document (RFC 9457). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** The signed-in user: {id, tenant, roles}, or null. */
export const session = { user: null, onSignedOut: () => {} };

/** Whether the user's roles include `role` (viewer ⊂ developer ⊂ operator ⊂ admin). */
export function can(role) {
  const ranks = (session.user?.roles || []).map((name) => RANK[name] ?? -1);
  return Math.max(-1, ...ranks) >= RANK[role];
}

function csrfToken() {
  for (const pair of document.cookie.split(";")) {
    const [name, ...value] = pair.trim().split("=");
    if (name === CSRF_COOKIE) return value.join("=");
  }
  return "";
}

let refreshing = null;

function refresh() {
  refreshing ??= fetch("/api/v1/auth/session/refresh", {
    method: "POST",
    headers: { [CSRF_HEADER]: csrfToken() },
    credentials: "same-origin",
  })
    .then((response) => response.ok)
    .catch(() => false)
    .finally(() => { refreshing = null; });
  return refreshing;
}

function queryString(query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && item !== null && item !== "") params.append(key, item);
    }
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

/**
 * Call the API: `api("POST", "/api/v1/runs/x/cancel", {body: {...}})`.
 * Resolves to the JSON answer (null for 204); rejects with ApiError.
 */
export async function api(method, path, { body, query, headers = {}, renew = true } = {}) {
  const sent = { accept: "application/json, application/problem+json", ...headers };
  if (body !== undefined) sent["content-type"] = "application/json";
  if (!SAFE.has(method)) sent[CSRF_HEADER] = csrfToken();
  const response = await fetch(path + queryString(query), {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  if (response.status === 401 && renew && csrfToken() && (await refresh())) {
    return api(method, path, { body, query, headers, renew: false });
  }
  if (response.status === 401 && session.user) {
    session.user = null;
    session.onSignedOut();
  }
  if (!response.ok) {
    let problem = {};
    try { problem = await response.json(); } catch { /* not JSON: status only */ }
    throw new ApiError(response.status, problem);
  }
  return response.status === 204 ? null : response.json();
}

/** Whether an error means the API is not there (yet): a service without the route. */
export function isMissing(error) {
  return error instanceof ApiError && [404, 405, 501, 503].includes(error.status);
}

export async function signIn(username, password, tenant) {
  const body = { username, password };
  if (tenant) body.tenant = tenant;
  const answer = await api("POST", "/api/v1/auth/session", { body, renew: false });
  session.user = { id: answer.id, tenant: answer.tenant, roles: answer.roles };
  return session.user;
}

export async function loadSession() {
  try {
    session.user = await api("GET", "/api/v1/auth/me");
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    session.user = null;
  }
  return session.user;
}

export async function signOut() {
  try {
    await api("DELETE", "/api/v1/auth/session", { renew: false });
  } finally {
    session.user = null;
  }
}
