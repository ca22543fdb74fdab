// beanpay checkout's service worker: shows the Web Push notifications beanpay sends about an order
// (registered from the checkout page with scope /pay/ when the customer asks to be told).
"use strict";
self.addEventListener("push", (event) => {
  const data = event.data ? event.data.json() : {};
  event.waitUntil(self.registration.showNotification(data.title || "beanpay", {
    body: data.body || "", tag: data.id, data: { link: data.link },
  }));
});
self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const link = event.notification.data && event.notification.data.link;
  if (link) event.waitUntil(self.clients.openWindow(link));
});
