// Live progress of one job: a websocket first, polling the progress JSON if the socket fails.
(function () {
  "use strict";
  const root = document.querySelector(".job-progress");
  if (!root) return;
  const jobId = root.dataset.job;
  const steps = root.dataset.steps.split(",");
  const pollUrl = root.dataset.pollUrl;
  let pollTimer = null;
  let finished = false;

  function setBar(bar, percent) {
    bar.querySelector(".fill").style.width = percent + "%";
    bar.setAttribute("aria-valuenow", String(percent));
  }

  function log(event) {
    const item = document.createElement("li");
    item.textContent = new Date().toLocaleTimeString() + " " + event.type + " " +
      (event.progress ?? "") + "% " + (event.message || "");
    root.querySelector(".log ol").appendChild(item);
  }

  function show(event) {
    log(event);
    if (event.type === "snapshot") return;
    const percent = event.progress || 0;
    setBar(root.querySelector(".overall .bar"), percent);
    root.querySelector(".percent").textContent = percent + "%";
    const status = root.querySelector(".status");
    status.textContent = event.status;
    status.className = "status status-" + event.status;
    root.querySelector(".message").textContent = event.message || "";
    root.querySelector(".eta").textContent = event.eta_s ? "About " + Math.ceil(event.eta_s) + " s left" : "";
    steps.forEach(function (name) {
      const record = (event.steps || {})[name] || {};
      const item = root.querySelector('[data-step="' + name + '"]');
      const done = record.status === "done" || record.status === "reused";
      const running = record.status === "running" || event.step === name && !done;
      let stepPercent = done ? 100 : 0;
      if (running) stepPercent = 50;
      item.querySelector(".fill").style.width = stepPercent + "%";
      item.querySelector(".state").textContent = record.status ? record.status +
        (record.duration_s ? " (" + record.duration_s + " s)" : "") +
        (record.chunks ? ", chunks: " + record.chunks.reused + " of " + record.chunks.total + " reused" : "") : "";
    });
    if (event.type === "done" && event.urls) {
      finished = true;
      const result = root.querySelector(".result");
      result.hidden = false;
      const video = result.querySelector("video");
      if (event.urls.video && video.getAttribute("src") !== event.urls.video) video.src = event.urls.video;
      const links = result.querySelector(".links");
      links.textContent = "";
      Object.keys(event.urls).forEach(function (name) {
        const link = document.createElement("a");
        link.href = event.urls[name];
        link.textContent = name;
        link.download = "";
        links.appendChild(link);
        links.appendChild(document.createTextNode(" "));
      });
    }
    if (event.type === "error") finished = true;
  }

  function poll() {
    if (pollTimer) return;
    root.querySelector(".transport").textContent = "Live updates by polling.";
    pollTimer = setInterval(function () {
      fetch(pollUrl, { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (event) {
          event.type = event.status === "SUCCESS" ? "done" : (event.status === "FAILED" || event.status === "CANCELLED") ? "error" : "update";
          show(event);
        })
        .catch(function () {});
    }, 2000);
  }

  const initial = JSON.parse(document.getElementById("job-progress-initial").textContent);
  show(initial);
  try {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws/jobs/" + jobId + "/");
    socket.onopen = function () { root.querySelector(".transport").textContent = "Live updates over a websocket."; };
    socket.onmessage = function (message) { show(JSON.parse(message.data)); };
    socket.onerror = poll;
    socket.onclose = function (event) { if (!finished || event.code >= 4000) poll(); };
  } catch (error) {
    poll();
  }
})();
