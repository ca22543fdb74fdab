// beanpay merchant console: every part of a shop, worked through the public API (session.js signs in
// and sends each call with the session's CSRF token). Each section loads when its tab opens.
"use strict";
(function () {
  const { $, t, api, problem } = window.beanpay;
  let shop = null;

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids.flat()) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  }

  function coins(units, decimals) {
    if (units === null || units === undefined) return "";
    const neg = String(units).startsWith("-"), digits = String(units).replace("-", "").padStart(decimals + 1, "0");
    const whole = digits.slice(0, digits.length - decimals), frac = digits.slice(digits.length - decimals).replace(/0+$/, "");
    return (neg ? "-" : "") + whole + (frac ? "." + frac : "");
  }

  function units(text, decimals) { // whole coins typed -> base units, exact (no float)
    const [whole, frac = ""] = text.trim().split(".");
    if (!/^\d+$/.test(whole) || !/^\d*$/.test(frac) || frac.length > decimals) return null;
    return (BigInt(whole) * 10n ** BigInt(decimals) + BigInt((frac + "0".repeat(decimals)).slice(0, decimals) || "0")).toString();
  }

  function say(text, ok) {
    const box = $("[data-message]");
    box.hidden = false;
    box.textContent = text;
    box.dataset.ok = ok ? "1" : "0";
  }

  async function act(promise, reload) {
    const res = await promise;
    if (res.ok) { say(t("Done"), true); if (reload) await reload(); } else say(t("Failed") + ": " + problem(res), false);
    return res;
  }

  function button(label, onclick, cls) {
    return el("button", { type: "button", class: cls || "", onclick: async (e) => {
      e.target.disabled = true;
      try { await onclick(); } finally { e.target.disabled = false; }
    } }, label);
  }

  function table(headers, rows, name) {
    if (!rows.length) return el("p", { class: "hint", text: t("Nothing here yet.") });
    return el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": name || "table" }, el("table", { "data-table": name || "" },
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.map((r) => el("tr", { "data-row": r.id || "" }, r.cells.map((c) => el("td", {}, c)))))));
  }

  function form(fields, submit, onsubmit, name) {
    const f = el("form", { class: "inline-form", "data-form": name || "" });
    for (const field of fields) {
      const id = `f-${name}-${field.name}`;
      f.append(el("label", { for: id }, field.label));
      if (field.options) {
        f.append(el("select", { id, name: field.name }, field.options.map((o) =>
          el("option", { value: o[0], selected: o[0] === field.value }, o[1]))));
      } else {
        f.append(el("input", { id, name: field.name, type: field.type || "text", value: field.value ?? "",
                               required: field.required, autocomplete: "off", step: field.step }));
      }
    }
    f.append(el("button", { type: "submit" }, submit));
    f.addEventListener("submit", async (e) => {
      e.preventDefault();
      const values = Object.fromEntries(new FormData(f).entries());
      await onsubmit(values, f);
    });
    return f;
  }

  function short(id) { return id ? id.slice(0, 8) : ""; }
  function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }
  function body(key) { const b = $(`[data-body="${key}"]`); b.innerHTML = ""; return b; }

  // ---- orders and their exceptions ---------------------------------------------------------------
  async function orders(filter) {
    const b = body("orders");
    const select = el("select", { id: "order-filter", "data-filter": "orders" },
      [["", t("All")], ["underpaid", "underpaid"], ["overpaid", "overpaid"], ["late", "late"]].map((o) =>
        el("option", { value: o[0], selected: o[0] === (filter || "") }, o[1])));
    select.addEventListener("change", () => orders(select.value));
    b.append(el("label", { for: "order-filter" }, t("Filter")), select);
    const q = `/v1/orders?shop_id=${shop.id}&limit=50` + (filter ? `&payment_status=${filter}` : "");
    const page = await api("GET", q);
    if (!page.ok) { b.append(el("p", { class: "error-text", text: problem(page) })); return; }
    const reload = () => orders(filter);
    b.append(table([t("Created"), "#", t("Status"), t("Payment"), t("Total"), t("Asset"), t("Actions")],
      page.data.items.map((o) => ({ id: o.id, cells: [when(o.created_at), short(o.id), o.status, o.payment_status,
        `${o.total_amount} ${o.currency}`, o.asset || "", orderActions(o, reload)] })), "orders"));
  }

  function orderActions(o, reload) {
    const resolve = (action) => act(api("POST", `/v1/orders/${o.id}/payment/resolve`, { action }), reload);
    const refund = (variant) => act(api("POST", `/v1/orders/${o.id}/refunds`, { variant }), reload);
    const out = [];
    if (o.payment_status === "underpaid" || o.payment_status === "late") {
      out.push(button(t("Accept"), () => resolve("accept")), button(t("Refund"), () => resolve("refund"), "secondary"));
    } else if (o.payment_status === "overpaid") {
      out.push(button(t("Refund overpayment"), () => refund("overpaid")), button(t("Keep it"), () => resolve("settle"), "secondary"));
    } else if (o.payment_status === "confirmed") {
      out.push(button(t("Refund"), () => refund("crypto_paid"), "secondary"));
    }
    return el("span", { class: "actions" }, out);
  }

  // ---- invoices -----------------------------------------------------------------------------------
  async function invoices() {
    const b = body("invoices");
    b.append(form([{ name: "amount", label: t("Amount"), required: true, value: "10.00" },
                   { name: "currency", label: "Currency", value: shop.currency || "USD" },
                   { name: "order_ref", label: t("Reference") },
                   { name: "assets", label: t("Assets"), value: "btc/BTC, eth/ETH, eth/tUSDC" }],
      t("Create invoice"), async (v) => {
        const assets = v.assets.split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
          const [chain, asset] = s.split("/"); return { chain, asset };
        });
        const res = await act(api("POST", "/v1/invoices", { shop_id: shop.id, amount: v.amount, currency: v.currency,
                                                             order_ref: v.order_ref || null, assets }));
        if (res.ok) {
          await invoices();
          $('[data-body="invoices"]').prepend(el("p", { class: "notice", "data-checkout-link": "" }, t("Checkout link") + ": ",
            el("a", { href: `/pay/${res.data.checkout_token}` }, `${location.origin}/pay/${res.data.checkout_token}`)));
        }
      }, "invoice"));
    const page = await api("GET", `/v1/invoices?shop_id=${shop.id}&limit=50`);
    if (!page.ok) { b.append(el("p", { class: "error-text", text: problem(page) })); return; }
    b.append(table([t("Created"), t("Reference"), t("Amount"), t("Status"), t("Actions")],
      page.data.items.map((i) => ({ id: i.id, cells: [when(i.created_at), i.order_ref || short(i.id),
        `${i.amount} ${i.currency}`, i.exception || i.status,
        ["new", "pending"].includes(i.status) ? button(t("Cancel"), () => act(api("POST", `/v1/invoices/${i.id}/cancel`), invoices), "secondary") : ""] })),
      "invoices"));
  }

  // ---- refunds and payouts ------------------------------------------------------------------------
  function psbtTools(kind, r, reload) {
    const out = [];
    if (r.psbt && r.status === "awaiting_signature") {
      const blob = new Blob([r.psbt], { type: "text/plain" });
      out.push(el("a", { class: "button secondary", href: URL.createObjectURL(blob), download: `${kind}-${short(r.id)}.psbt`,
                         "data-psbt-download": r.id }, t("Download PSBT")));
      const input = el("input", { type: "file", accept: ".psbt,.txt", "aria-label": t("Upload signed PSBT"), "data-psbt-upload": r.id });
      input.addEventListener("change", async () => {
        const bytes = new Uint8Array(await input.files[0].arrayBuffer());
        const binary = bytes[0] === 0x70 && bytes[1] === 0x73 && bytes[2] === 0x62 && bytes[3] === 0x74 && bytes[4] === 0xff;
        const psbt = binary ? btoa(String.fromCharCode(...bytes)) : new TextDecoder().decode(bytes).trim();
        const path = kind === "refund" ? `/v1/refunds/${r.id}/signed-psbt` : `/v1/payout-batches/${r.batch_id}/signed-psbt`;
        await act(api("POST", path, { psbt }), reload);
      });
      out.push(el("label", { class: "button secondary upload" }, t("Upload signed PSBT"), input));
    }
    return out;
  }

  async function refunds() {
    const b = body("refunds");
    const page = await api("GET", `/v1/shops/${shop.id}/refunds?limit=50`);
    if (!page.ok) { b.append(el("p", { class: "error-text", text: problem(page) })); return; }
    b.append(table([t("Created"), t("Amount"), t("Status"), t("Destination"), t("Transaction"), t("Actions")],
      page.data.items.map((r) => ({ id: r.id, cells: [when(r.created_at), `${coins(r.amount, r.decimals)} ${r.asset}`,
        r.status, r.destination || (r.claim_url ? el("a", { href: r.claim_url }, t("Checkout link")) : ""), r.txid || "",
        el("span", { class: "actions" },
          r.status === "awaiting_approval" ? button(t("Approve"), () => act(api("POST", `/v1/refunds/${r.id}/approve`, {}), refunds)) : "",
          psbtTools("refund", r, refunds),
          ["awaiting_claim", "awaiting_approval", "awaiting_signature"].includes(r.status)
            ? button(t("Cancel"), () => act(api("POST", `/v1/refunds/${r.id}/cancel`), refunds), "secondary") : "")] })),
      "refunds"));
  }

  async function payouts() {
    const b = body("payouts");
    const balances = await api("GET", `/v1/shops/${shop.id}/balances`);
    const custodial = balances.ok ? balances.data.balances.filter((x) => x.custodial && x.balance !== "0") : [];
    if (custodial.length) {
      b.append(form([{ name: "asset", label: t("Asset"), options: custodial.map((x) => [`${x.chain}/${x.asset}/${x.decimals}`,
                       `${x.asset} (${x.chain}): ${coins(x.balance, x.decimals)}`]) },
                     { name: "amount", label: t("Amount"), required: true }, { name: "address", label: t("Address"), required: true }],
        t("Request payout"), async (v) => {
          const [chain, asset, decimals] = v.asset.split("/");
          const amount = units(v.amount, Number(decimals));
          if (amount === null) { say(t("Failed") + ": " + t("Amount"), false); return; }
          await act(api("POST", `/v1/shops/${shop.id}/payouts`, { chain, asset, amount, address: v.address.trim() }), payouts);
        }, "payout"));
    }
    const page = await api("GET", `/v1/shops/${shop.id}/payouts?limit=50`);
    if (!page.ok) { b.append(el("p", { class: "error-text", text: problem(page) })); return; }
    b.append(table([t("Created"), t("Amount"), t("Status"), t("Destination"), t("Transaction"), t("Actions")],
      page.data.items.map((r) => ({ id: r.id, cells: [when(r.created_at), `${coins(r.amount, r.decimals)} ${r.asset}`, r.status,
        r.destination || "", r.txid || "", ["awaiting_approval", "awaiting_signature"].includes(r.status)
          ? button(t("Cancel"), () => act(api("POST", `/v1/payouts/${r.id}/cancel`), payouts), "secondary") : ""] })),
      "payouts"));
  }

  // ---- balances and ledger ------------------------------------------------------------------------
  async function ledger() {
    const b = body("ledger");
    const balances = await api("GET", `/v1/shops/${shop.id}/balances`);
    if (!balances.ok) { b.append(el("p", { class: "error-text", text: problem(balances) })); return; }
    for (const x of balances.data.balances.filter((x) => x.custodial && x.balance.startsWith("-"))) {
      b.append(el("p", { class: "error-text debt", text: t("The shop owes the platform {amount}: a chain reorganisation took back a payment already paid out. New payments pay it back; refunds and payouts wait until the balance is above zero.", { amount: `${coins(x.balance.slice(1), x.decimals ?? 0)} ${x.asset}` }) }));
    }
    b.append(table([t("Asset"), t("Chain"), t("Balance"), t("Wallet")], balances.data.balances.map((x) => ({
      cells: [x.asset, x.chain, coins(x.balance, x.decimals ?? 0), x.custodial ? t("Custodial (platform wallet)") : t("Own wallet")] })),
      "balances"));
    b.append(el("p", {}, el("a", { class: "button secondary", href: `/v1/shops/${shop.id}/ledger.csv`, download: "",
                                    "data-export": "" }, t("Export CSV"))));
    const entries = await api("GET", `/v1/shops/${shop.id}/ledger?limit=50`);
    const decimals = Object.fromEntries(balances.data.balances.map((x) => [`${x.chain}/${x.asset}`, x.decimals]));
    b.append(table([t("Created"), t("Kind"), t("Amount"), t("Memo")], (entries.data ? entries.data.items : []).map((e) => ({
      cells: [when(e.created_at), e.kind, `${coins(e.amount, decimals[`${e.chain}/${e.asset}`] ?? 0)} ${e.asset}`, e.memo || ""] })),
      "ledger"));
  }

  // ---- webhooks -----------------------------------------------------------------------------------
  async function webhooks() {
    const b = body("webhooks");
    b.append(form([{ name: "url", label: t("URL"), type: "url", required: true }, { name: "events", label: t("Events"), value: "*" }],
      t("Add endpoint"), async (v) => {
        const res = await act(api("POST", `/v1/shops/${shop.id}/webhooks`, { url: v.url,
          event_types: v.events.split(",").map((s) => s.trim()).filter(Boolean) }), webhooks);
        if (res.ok) $('[data-body="webhooks"]').prepend(el("p", { class: "notice" }, "Secret: ", el("code", {}, res.data.secret)));
      }, "webhook"));
    const list = await api("GET", `/v1/shops/${shop.id}/webhooks`);
    if (!list.ok) { b.append(el("p", { class: "error-text", text: problem(list) })); return; }
    const detail = el("div", { "data-deliveries": "" });
    b.append(table([t("URL"), t("Events"), t("Actions")], (list.data.items || list.data).map((w) => ({ id: w.id,
      cells: [w.url, w.event_types.join(", "), el("span", { class: "actions" },
        button(t("Deliveries"), () => deliveries(w, detail)),
        button(t("Delete"), () => act(api("DELETE", `/v1/shops/${shop.id}/webhooks/${w.id}`), webhooks), "secondary"))] })),
      "webhooks"), detail);
  }

  async function deliveries(w, into) {
    into.innerHTML = "";
    const page = await api("GET", `/v1/shops/${shop.id}/webhooks/${w.id}/deliveries?limit=50`);
    if (!page.ok) { into.append(el("p", { class: "error-text", text: problem(page) })); return; }
    into.append(el("h3", {}, `${t("Deliveries")}: ${w.url}`), table([t("Created"), t("Events"), t("Status"), t("Actions")],
      (page.data.items || page.data).map((d) => ({ id: d.id, cells: [when(d.created_at), d.event_type, d.status,
        button(t("Redeliver"), () => act(api("POST", `/v1/shops/${shop.id}/webhooks/${w.id}/deliveries/${d.id}/redeliver`),
                                          () => deliveries(w, into)))] })), "deliveries"));
  }

  // ---- wallets, keys, people, shop ----------------------------------------------------------------
  async function wallets() {
    const b = body("wallets");
    const found = await api("GET", `/v1/shops/${shop.id}/wallets`);
    if (!found.ok) { b.append(el("p", { class: "error-text", text: problem(found) })); return; }
    b.append(table([t("Chain"), t("Wallet"), "gap"], found.data.wallets.map((w) => ({ cells: [w.chain,
      w.custodial ? t("Custodial (platform wallet)") : (w.account_key || w.treasury), w.gap ?? ""] })), "wallets"));
    b.append(form([{ name: "chain", label: t("Chain"), options: found.data.wallets.map((w) => [w.chain, w.chain]) },
                   { name: "key", label: "xpub / zpub / treasury" }, { name: "origin", label: "key origin" }],
      t("Set wallet"), async (v) => {
        const wallet = v.chain === "btc" ? { account_key: v.key, key_origin: v.origin || null } : { treasury: v.key };
        await act(api("PUT", `/v1/shops/${shop.id}/wallets/${v.chain}`, wallet), wallets);
      }, "wallet"));
  }

  async function keys() {
    const b = body("keys");
    b.append(form([{ name: "name", label: t("Name"), required: true },
                   { name: "permissions", label: t("Permissions"), value: "orders:read, invoices:create" }],
      t("Create"), async (v) => {
        const res = await act(api("POST", "/v1/api-keys", { name: v.name, shop_ids: [shop.id],
          permissions: v.permissions.split(",").map((s) => s.trim()).filter(Boolean) }), keys);
        if (res.ok) $('[data-body="keys"]').prepend(el("p", { class: "notice", "data-new-key": "" }, t("Key (shown once)") + ": ",
                                                       el("code", {}, res.data.key)));
      }, "key"));
    const list = await api("GET", `/v1/api-keys?shop_id=${shop.id}`);
    if (!list.ok) { b.append(el("p", { class: "error-text", text: problem(list) })); return; }
    b.append(table([t("Name"), t("Permissions"), t("Created"), t("Actions")], (list.data.items || list.data).map((k) => ({
      id: k.id, cells: [`${k.name} (${k.prefix})`, k.permissions.join(", "), when(k.created_at),
        k.revoked_at ? "revoked" : button(t("Revoke"), () => act(api("DELETE", `/v1/api-keys/${k.id}`), keys), "secondary")] })),
      "keys"));
  }

  async function people() {
    const b = body("people");
    b.append(form([{ name: "email", label: t("Email"), type: "email", required: true },
                   { name: "role", label: t("Role"), options: [["staff", "staff"], ["manager", "manager"]] }],
      t("Invite"), async (v) => {
        const res = await act(api("POST", `/v1/shops/${shop.id}/invitations`, { email: v.email, role: v.role }), people);
        if (res.ok) $('[data-body="people"]').prepend(el("p", { class: "notice", "data-invitation-link": "" },
                                                         t("Invitation link (shown once)") + ": ", el("code", {}, res.data.link)));
      }, "invite"));
    const members = await api("GET", `/v1/shops/${shop.id}/members`);
    if (members.ok) {
      b.append(table([t("Email"), t("Name"), t("Role")], members.data.map((m) => ({ cells: [m.email || "", m.display_name || "", m.role] })),
                     "members"));
    }
    const open = await api("GET", `/v1/shops/${shop.id}/invitations`);
    if (open.ok) {
      b.append(table([t("Email"), t("Role"), t("Actions")], open.data.map((i) => ({ id: i.id, cells: [i.email, i.role,
        button(t("Withdraw"), () => act(api("DELETE", `/v1/shops/${shop.id}/invitations/${i.id}`), people), "secondary")] })),
        "invitations"));
    }
  }

  async function shopAndMenu() {
    const b = body("shop");
    const found = await api("GET", `/v1/shops/${shop.id}`);
    if (!found.ok) { b.append(el("p", { class: "error-text", text: problem(found) })); return; }
    const s = found.data;
    b.append(form([{ name: "name", label: t("Name"), value: s.name, required: true },
                   { name: "address", label: t("Address"), value: s.address, required: true },
                   { name: "phone", label: t("Phone"), value: s.phone || "" }],
      t("Save"), (v) => act(api("PATCH", `/v1/shops/${shop.id}`, { name: v.name, address: v.address, phone: v.phone || null }),
                            shopAndMenu), "shop"));
    const menu = await api("GET", `/v1/shops/${shop.id}/menu`);
    if (!menu.ok) return;
    b.append(table([t("Product"), t("Price"), t("Available"), t("Actions")], menu.data.items.map((m) => {
      const price = el("input", { value: m.price, "aria-label": `${t("Price")} ${m.name}`, inputmode: "decimal", size: "6" });
      const available = el("input", { type: "checkbox", checked: m.available, "aria-label": `${t("Available")} ${m.name}` });
      return { id: m.product_id, cells: [m.name, price, available, button(t("Save"), () => act(api("PUT",
        `/v1/shops/${shop.id}/products/${m.product_id}`, { price: price.value, available: available.checked }), shopAndMenu))] };
    }), "menu"));
  }

  const LOADERS = { orders, invoices, refunds, payouts, ledger, webhooks, wallets, keys, people, shop: shopAndMenu };

  async function open() {
    const key = (location.hash || "#orders").slice(1);
    const chosen = LOADERS[key] ? key : "orders";
    document.querySelectorAll("[data-panel]").forEach((p) => { p.hidden = p.dataset.panel !== chosen; });
    document.querySelectorAll("[data-tab]").forEach((a) => {
      if (a.dataset.tab === chosen) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    });
    await LOADERS[chosen]();
  }

  async function ready(me) {
    const managed = me.grants.filter((g) => g.role === "owner" || g.role === "manager");
    if (!managed.length) { $("[data-who]").textContent = t("You have no shop to manage."); return; }
    const shops = await window.beanpay.shopNames(managed);
    const select = $("[data-shop]");
    select.innerHTML = "";
    shops.forEach((s) => select.append(el("option", { value: s.id }, s.name)));
    const pick = async () => {
      shop = shops.find((s) => s.id === select.value);
      const full = await api("GET", `/v1/shops/${shop.id}`);
      if (full.ok) shop.currency = full.data.currency;
      await open();
    };
    select.onchange = pick;
    window.addEventListener("hashchange", open);
    await pick();
  }

  window.beanpay.signIn(ready);
})();
