// The admin job list, live: status and progress of the listed jobs follow the websocket feed
// (/ws/jobs/: every active job the user sees), and a notice says when a render finished or failed.
(function () {
  "use strict";
  const notices = document.querySelector(".job-notices");
  if (!notices || !("WebSocket" in window)) return;
  const finalStates = { SUCCESS: true, FAILED: true, CANCELLED: true };
  const lastState = {};
  let delay = 1000;

  function cell(kind, job) {
    return document.querySelector("[data-job-" + kind + '="' + job + '"]');
  }

  function titleOf(job) {
    const row = cell("status", job) && cell("status", job).closest("tr");
    const link = row && row.querySelector("th a, td a");
    return link ? link.textContent.trim() : "Job " + job;
  }

  function notify(event) {
    const item = document.createElement("li");
    const ok = event.status === "SUCCESS";
    item.className = ok ? "success" : "error";
    const link = document.createElement("a");
    link.href = event.job + "/change/";
    link.textContent = titleOf(event.job);
    item.appendChild(document.createTextNode(ok ? "Render finished: " : "Render " + event.status.toLowerCase() + ": "));
    item.appendChild(link);
    if (!ok && event.message) item.appendChild(document.createTextNode(" — " + event.message));
    notices.appendChild(item);
    notices.hidden = false;
  }

  function show(event) {
    if (!event || event.job === undefined || !event.status) return;
    const status = cell("status", event.job);
    if (status) {
      status.textContent = event.status;
      status.className = "status status-" + event.status.toLowerCase();
    }
    const progress = cell("progress", event.job);
    if (progress) {
      const percent = Math.max(0, Math.min(100, event.progress || 0));
      progress.textContent = "";
      const bar = document.createElement("span");
      bar.className = "mini-bar";
      bar.title = percent + "%";
      const fill = document.createElement("span");
      fill.style.width = percent + "%";
      bar.appendChild(fill);
      progress.appendChild(bar);
      progress.appendChild(document.createTextNode(" " + percent + "%"));
    }
    // "Updated": the render's own time of change, shown as the server shows it (its local "YYYY-MM-DD HH:MM").
    const updated = cell("updated", event.job);
    if (updated && event.updated_at && event.updated_at > (updated.title || "")) {
      updated.title = event.updated_at;
      updated.textContent = event.updated_at.slice(0, 16).replace("T", " ");
    }
    // A notice once per execution that ends while this page is open (not for one already over).
    const previous = lastState[event.job];
    lastState[event.job] = event.execution + ":" + event.status;
    const ended = finalStates[event.status] && (event.type === "done" || event.type === "error");
    if (ended && previous !== lastState[event.job] && previous !== undefined) notify(event);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws/jobs/");
    socket.onopen = function () { delay = 1000; document.body.dataset.jobFeed = "open"; };
    socket.onmessage = function (message) {
      const event = JSON.parse(message.data);
      if (event.type === "snapshot") {
        (event.jobs || []).forEach(function (job) { show(job); });
        document.body.dataset.jobFeed = "live";
      } else {
        show(event);
      }
    };
    socket.onclose = function () {
      document.body.dataset.jobFeed = "closed";
      setTimeout(connect, delay);  // the server restarted or the network blinked: try again, slower
      delay = Math.min(delay * 2, 30000);
    };
  }

  // Jobs listed as running or waiting count as seen, so their end gives a notice.
  document.querySelectorAll("[data-job-status]").forEach(function (status) {
    if (!finalStates[status.textContent.trim()] && status.textContent.trim() !== "NEW") {
      lastState[status.dataset.jobStatus] = "listed";
    }
  });
  connect();
})();
