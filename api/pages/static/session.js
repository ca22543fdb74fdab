// beanpay pages for people with accounts (staff board, console): signing in with the session cookie
// and calling the public API with its CSRF token. Shared by staff.js and console.js.
"use strict";
window.beanpay = (function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const S = JSON.parse($("#strings").textContent);
  const t = (key, values) => (S[key] || key).replace(/\{(\w+)\}/g, (_, k) => String(values && values[k]));
  let csrf = null;

  async function api(method, path, body, extra) {
    const headers = Object.assign({ "Accept": "application/json" }, extra || {});
    if (method !== "GET") {
      headers["X-CSRF-Token"] = csrf || "";
      if (method === "POST") headers["Idempotency-Key"] = crypto.randomUUID();
    }
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(path, { method, headers, credentials: "same-origin",
                                     body: body === undefined ? undefined : JSON.stringify(body) });
    const data = resp.status === 204 ? null : await resp.json().catch(() => null);
    return { status: resp.status, ok: resp.ok, data };
  }

  function problem(res) {
    const e = res.data && res.data.error;
    if (!e) return String(res.status);
    const fields = (e.fields || []).map((f) => `${f.field}: ${f.message}`).join("; ");
    return e.message + (fields ? ` (${fields})` : "");
  }

  function show(sel, on) { document.querySelectorAll(sel).forEach((el) => { el.hidden = !on; }); }

  // onReady(me) runs once signed in; the login form is shown until then
  async function start(onReady) {
    const me = await api("GET", "/v1/auth/me");
    if (me.status !== 200) { show("[data-login]", true); show("[data-work]", false); return; }
    csrf = me.data.csrf_token;
    $("[data-who]").textContent = t("Signed in as {name}", { name: me.data.user.display_name || me.data.user.email });
    show("[data-login]", false); show("[data-work]", true);
    await onReady(me.data);
  }

  function signIn(onReady) {
    $("[data-login-form]").addEventListener("submit", async (e) => {
      e.preventDefault();
      const form = e.target;
      const body = { email: form.email.value, password: form.password.value };
      if (form.totp.value) body.totp = form.totp.value;
      const done = await api("POST", "/v1/auth/login", body);
      if (done.status === 200) { form.password.value = ""; await start(onReady); return; }
      const second = done.data && done.data.error && done.data.error.code === "second_factor_required";
      if (second) show("[data-totp]", true);
      $("[data-login-error]").textContent = second ? done.data.error.message : t("Wrong email or password");
    });
    const out = $("[data-logout]");
    if (out) out.addEventListener("click", async () => { await api("POST", "/v1/auth/logout"); location.reload(); });
    start(onReady).catch(() => {
      $("[data-who]").textContent = t("Could not reach beanpay; retrying");
      setTimeout(() => start(onReady), 3000);
    });
  }

  async function shopNames(grants) {
    const named = [];
    for (const g of grants) {
      const shop = await api("GET", "/v1/shops/" + g.shop_id);
      named.push({ id: g.shop_id, role: g.role, name: shop.status === 200 ? shop.data.name : g.shop_id });
    }
    return named;
  }

  return { $, t, api, problem, show, signIn, shopNames };
})();
