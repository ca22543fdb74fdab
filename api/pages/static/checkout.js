// beanpay checkout: live updates over Server-Sent Events, copy buttons, the countdown and the
// browser-wallet (EIP-1193) button. The page works without this file; it only makes it live.
"use strict";
(function () {
  const live = document.getElementById("live");

  function coins(units, decimals) {
    const s = units.padStart(decimals + 1, "0");
    const whole = s.slice(0, s.length - decimals), frac = s.slice(s.length - decimals).replace(/0+$/, "");
    return frac ? whole + "." + frac : whole;
  }

  function bind(root) {
    root.querySelectorAll("button.copy").forEach(function (b) {
      b.hidden = !navigator.clipboard;
      b.addEventListener("click", function () {
        const d = b.dataset.copyCoins;
        const text = d === undefined ? b.dataset.copy : coins(b.dataset.copy, Number(d));
        navigator.clipboard.writeText(text).then(function () { b.dataset.copied = "1"; });
      });
    });
    root.querySelectorAll("[data-countdown]").forEach(function (el) { el.hidden = false; });
    root.querySelectorAll("[data-wallet]").forEach(function (b) {
      b.hidden = !window.ethereum;
      b.addEventListener("click", function () { payWithWallet(b, root.querySelector("[data-wallet-status]")); });
    });
    tick();
  }

  function tick() {
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      const left = Math.max(0, Math.floor((Date.parse(el.dataset.countdown) - Date.now()) / 1000));
      const m = Math.floor(left / 60), s = String(left % 60).padStart(2, "0");
      el.textContent = "(" + m + ":" + s + ")";
    });
  }

  async function payWithWallet(button, status) {
    const eth = window.ethereum;
    try {
      button.disabled = true;
      const [from] = await eth.request({ method: "eth_requestAccounts" });
      const chain = await eth.request({ method: "eth_chainId" });
      if (chain.toLowerCase() !== button.dataset.chainId.toLowerCase()) {
        await eth.request({ method: "wallet_switchEthereumChain", params: [{ chainId: button.dataset.chainId }] });
      }
      const amount = BigInt(button.dataset.amount);
      let tx;
      if (button.dataset.token) { // ERC-20 transfer(address,uint256)
        const to = button.dataset.to.toLowerCase().replace(/^0x/, "").padStart(64, "0");
        const data = "0xa9059cbb" + to + amount.toString(16).padStart(64, "0");
        tx = { from: from, to: button.dataset.token, data: data, value: "0x0" };
      } else {
        tx = { from: from, to: button.dataset.to, value: "0x" + amount.toString(16) };
      }
      const hash = await eth.request({ method: "eth_sendTransaction", params: [tx] });
      if (status) { status.textContent = hash; status.dataset.sent = "1"; }
    } catch (err) {
      if (status) { status.textContent = (err && err.message) || String(err); }
      button.disabled = false;
    }
  }

  function key(b64) { // base64url -> bytes, for PushManager.subscribe
    const raw = atob(b64.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - b64.length % 4) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  const notify = document.querySelector("[data-notify]");
  if (notify && "serviceWorker" in navigator && "PushManager" in window) {
    notify.hidden = false;
    const status = document.querySelector("[data-notify-status]");
    notify.addEventListener("click", async () => {
      try {
        const reg = await navigator.serviceWorker.register("/static/sw.js", { scope: "/pay/" });
        if (await Notification.requestPermission() !== "granted") throw new Error("not allowed");
        const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key(notify.dataset.vapid) });
        const resp = await fetch(`/v1/orders/${notify.dataset.order}/push-subscriptions`, {
          method: "POST", body: JSON.stringify(sub.toJSON()),
          headers: { "Content-Type": "application/json", "X-Checkout-Token": location.pathname.split("/")[2],
                     "Idempotency-Key": crypto.randomUUID() } });
        if (!resp.ok) throw new Error(String(resp.status));
        status.textContent = notify.dataset.done;
        notify.hidden = true;
      } catch (err) {
        status.textContent = notify.dataset.failed;
      }
    });
  }

  if (live) {
    bind(live);
    setInterval(tick, 1000);
    if (window.EventSource && live.dataset.events) {
      const stream = new EventSource(live.dataset.events);
      stream.addEventListener("live", function (e) { live.innerHTML = e.data; bind(live); });
      stream.addEventListener("done", function () { stream.close(); });
      stream.addEventListener("reload", function () { stream.close(); location.reload(); });
    }
  }
})();
