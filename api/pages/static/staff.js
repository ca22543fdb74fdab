// beanpay staff board: the shop's queue live (its event stream), one tap per move, claim codes typed
// or scanned, a chime for each newly paid order, low-stock alerts. Signing in and every call to the
// public API go through session.js.
"use strict";
(function () {
  const { $, t, api } = window.beanpay;
  const NEXT = { confirmed: ["preparing", "Start"], preparing: ["ready", "Ready"], ready: ["completed", "Hand over"] };
  const COLUMNS = ["confirmed", "preparing", "ready"];
  let shopId = null, stream = null;
  const products = new Map();
  const known = new Map(); // order id -> status shown

  async function start(me) {
    if (!me.grants.length) { $("[data-who]").textContent = t("You have no shop to work at."); return; }
    const select = $("[data-shop]");
    select.innerHTML = "";
    for (const shop of await window.beanpay.shopNames(me.grants)) {
      const opt = document.createElement("option");
      opt.value = shop.id;
      opt.textContent = shop.name;
      select.appendChild(opt);
    }
    const saved = localStorage.getItem("beanpay.staff.shop");
    if (saved && me.grants.some((g) => g.shop_id === saved)) select.value = saved;
    select.onchange = () => open(select.value);
    await open(select.value);
  }

  async function open(id) {
    shopId = id;
    localStorage.setItem("beanpay.staff.shop", id);
    if (stream) stream.close();
    stream = new EventSource("/v1/shops/" + id + "/events");
    stream.onmessage = (e) => onEvent(JSON.parse(e.data));
    // the stream may have missed events (it says so): read the queue again, and chime for paid orders
    // that came in meanwhile
    stream.addEventListener("resync", () => reload(true));
    await reload(false);
    document.body.dataset.ready = "1";
  }

  async function reload(chimeNew) {
    const before = new Set(known.keys());
    COLUMNS.forEach((c) => { $(`[data-column="${c}"]`).innerHTML = ""; });
    known.clear();
    for (const status of COLUMNS) {
      const page = await api("GET", `/v1/orders?shop_id=${shopId}&status=${status}&limit=100`);
      if (page.status !== 200) continue;
      for (const summary of page.data.items.slice().reverse()) await refresh(summary.id, false);
    }
    await loadStock();
    counts();
    if (chimeNew) {
      for (const [orderId, status] of known) if (status === "confirmed" && !before.has(orderId)) chime(orderId);
    }
  }

  async function productName(id) {
    if (!products.has(id)) {
      const p = await api("GET", "/v1/products/" + id);
      products.set(id, p.status === 200 ? p.data.name : id.slice(0, 8));
    }
    return products.get(id);
  }

  async function loadStock() {
    const alerts = $("[data-alerts]");
    alerts.innerHTML = "";
    const supplies = await api("GET", `/v1/shops/${shopId}/supplies`);
    if (supplies.status !== 200) return;
    for (const s of supplies.data.items || supplies.data) {
      const available = s.quantity - s.reserved;
      if (available <= s.reorder_level) await alert(s.id, s.product_id, available);
    }
  }

  async function alert(supplyId, productId, available) {
    const alerts = $("[data-alerts]");
    let el = alerts.querySelector(`[data-supply="${supplyId}"]`);
    if (!el) {
      el = document.createElement("p");
      el.className = "notice low-stock";
      el.dataset.supply = supplyId;
      alerts.appendChild(el);
    }
    el.textContent = t("Low stock: {product} ({available} left)", { product: await productName(productId), available });
  }

  function counts() {
    COLUMNS.forEach((c) => { $(`[data-count="${c}"]`).textContent = $(`[data-column="${c}"]`).children.length; });
  }

  const chimed = new Set(); // an order chimes once, whichever of its event or a resync shows it first

  function chime(orderId) {
    if (chimed.has(orderId)) return;
    chimed.add(orderId);
    document.body.dataset.chimes = String(Number(document.body.dataset.chimes || 0) + 1);
    try {
      const ctx = new (window.AudioContext || window.webkitAudioContext)();
      const osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.2, ctx.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.6);
      osc.connect(gain).connect(ctx.destination);
      osc.start(); osc.stop(ctx.currentTime + 0.6);
    } catch (err) { /* no audio here: the count above still shows it */ }
  }

  function card(order) {
    const li = document.createElement("li");
    li.className = "order-card";
    li.dataset.order = order.id;
    const head = document.createElement("h3");
    head.textContent = "#" + order.id.slice(0, 6).toUpperCase();
    li.appendChild(head);
    const meta = document.createElement("p");
    meta.className = "hint";
    const when = new Date(order.created_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    meta.textContent = `${t(order.order_type === "delivery" ? "Delivery" : "Pickup")} · ${when}` +
      (order.pickup_time ? ` · ${t("at")} ${new Date(order.pickup_time).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}` : "");
    li.appendChild(meta);
    const items = document.createElement("ul");
    for (const item of order.items) {
      const row = document.createElement("li");
      const extras = Object.entries(item.customizations).map(([k, v]) => `${k}: ${v.join(", ")}`).join("; ");
      row.textContent = `${item.quantity} × ${item.product_name}` + (extras ? ` (${extras})` : "");
      items.appendChild(row);
    }
    li.appendChild(items);
    if (order.special_instructions) {
      const note = document.createElement("p");
      note.className = "notice";
      note.textContent = `${t("Note")}: ${order.special_instructions}`;
      li.appendChild(note);
    }
    const next = NEXT[order.status];
    if (next) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = t(next[1]);
      button.dataset.move = next[0];
      button.onclick = () => move(order.id, next[0], button);
      li.appendChild(button);
    }
    return li;
  }

  async function refresh(orderId, live) {
    const found = await api("GET", "/v1/orders/" + orderId);
    const old = document.querySelector(`[data-order="${orderId}"]`);
    if (found.status !== 200) { if (old) old.remove(); counts(); return; }
    const order = found.data;
    const was = known.get(orderId);
    if (old) old.remove();
    if (COLUMNS.includes(order.status)) {
      $(`[data-column="${order.status}"]`).appendChild(card(order));
      known.set(orderId, order.status);
      if (live && order.status === "confirmed" && was === undefined) chime(orderId);
    } else {
      known.delete(orderId);
    }
    counts();
  }

  async function move(orderId, status, button) {
    button.disabled = true;
    const done = await api("POST", `/v1/orders/${orderId}/status`, { status });
    if (done.status !== 200) {
      button.disabled = false;
      $("[data-claim-result]").textContent = t("Could not move the order") + ": " + ((done.data && done.data.error && done.data.error.message) || done.status);
      return;
    }
    await refresh(orderId, false);
  }

  async function processClaim(code) {
    const result = $("[data-claim-result]");
    const done = await api("POST", `/v1/claims/${encodeURIComponent(code.trim())}/process`);
    if (done.status === 200) {
      result.textContent = t("Handed over: order {order}", { order: "#" + done.data.claim.order_id.slice(0, 6).toUpperCase() });
      result.dataset.ok = "1";
      await refresh(done.data.claim.order_id, false);
    } else {
      result.textContent = t("Claim code not accepted") + ": " + ((done.data && done.data.error && done.data.error.message) || done.status);
      result.dataset.ok = "0";
    }
  }

  function onEvent(msg) {
    if (msg.type.startsWith("order.") || msg.type.startsWith("claim.")) {
      refresh(msg.data.order_id, true);
    } else if (msg.type === "supply.low_stock_alert") {
      alert(msg.data.supply_id, msg.data.product_id, msg.data.available);
    } else if (msg.type === "supply.restocked") {
      loadStock();
    }
  }

  async function scan() {
    // camera scanning where the browser has a barcode detector; typed entry always works
    const video = $("[data-camera]");
    const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    video.hidden = false;
    await video.play();
    const look = async () => {
      const found = await detector.detect(video).catch(() => []);
      if (found.length) {
        video.srcObject.getTracks().forEach((tr) => tr.stop());
        video.hidden = true;
        $("[data-claim-input]").value = found[0].rawValue;
        await processClaim(found[0].rawValue);
      } else {
        requestAnimationFrame(look);
      }
    };
    look();
  }

  $("[data-claim-form]").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("[data-claim-input]");
    await processClaim(input.value);
    input.value = "";
  });
  if ("BarcodeDetector" in window && navigator.mediaDevices) {
    show("[data-scan]", true);
    $("[data-scan]").addEventListener("click", scan);
  }
  window.beanpay.signIn(start);
})();
