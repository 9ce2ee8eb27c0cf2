// Sign in with a username and password (POST /api/v1/auth/session: cookies, no token).

import { signIn } from "../api.js";
import { errorBox, h } from "../ui.js";

export function render(view, _params, query) {
  const status = h("div", { "aria-live": "assertive" });
  const field = (id, label, attrs) => [
    h("label", { for: id }, label),
    h("input", { id, name: id, ...attrs }),
  ];
  const form = h("form", { class: "signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in to Interlock"),
    field("username", "Username", { autocomplete: "username", required: true, autofocus: true }),
    field("password", "Password", { type: "password", autocomplete: "current-password", required: true }),
    field("tenant", "Tenant", { placeholder: "default", autocomplete: "organization" }),
    status,
    h("button", { type: "submit", class: "primary" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const button = form.querySelector("button");
    button.disabled = true;
    status.replaceChildren();
    try {
      await signIn(data.get("username"), data.get("password"), data.get("tenant"));
      const next = query.get("next");
      location.replace(`#${next && next !== "/sign-in" ? next : "/runs"}`);
    } catch (error) {
      status.replaceChildren(errorBox(error));
      button.disabled = false;
    }
  });
  view.append(form);
}
