// Storyboard: pick a segment's picture without reloading; thumbnails are buttons (Tab, Enter/Space,
// arrow keys move between the pictures of a segment).
(function () {
  "use strict";
  const form = document.querySelector("form.storyboard");
  if (!form) return;
  const chooseUrl = form.dataset.chooseUrl;
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const status = form.querySelector(".storyboard-status");

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
  }

  function choose(button) {
    const section = button.closest(".split");
    button.classList.add("saving");
    fetch(chooseUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ split: Number(section.dataset.split), key: button.dataset.key }),
    })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (result) {
        if (!result.ok) throw new Error(result.body.error || "Could not select the picture.");
        section.querySelectorAll(".thumb").forEach(function (thumb) {
          const chosen = thumb.dataset.key === result.body.selected;
          thumb.classList.toggle("selected", chosen);
          thumb.setAttribute("aria-pressed", chosen ? "true" : "false");
        });
        const select = section.querySelector("select");
        if (select) select.value = "";
        const note = section.querySelector(".clip-note");
        if (note) note.remove();
        say("Picture selected for segment " + section.querySelector("h2").textContent.replace("Segment ", "") + ".");
      })
      .catch(function (error) { say(error.message, true); })
      .finally(function () { button.classList.remove("saving"); });
  }

  // A segment's preview: the server makes it from the render's own chunks (seconds), then it plays here.
  function preview(button) {
    const section = button.closest(".split");
    const number = section.querySelector("h2").textContent.replace("Segment ", "");
    button.disabled = true;
    say("Making the preview of segment " + number + "…");
    fetch(form.dataset.previewUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ split: Number(section.dataset.split) }),
    })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (result) {
        if (!result.ok) throw new Error(result.body.error || "Could not make the preview.");
        const video = section.querySelector(".split-video");
        video.src = result.body.url;
        video.hidden = false;
        say("Preview of segment " + number + " ready.");
      })
      .catch(function (error) { say(error.message, true); })
      .finally(function () { button.disabled = false; });
  }

  form.addEventListener("click", function (event) {
    const button = event.target.closest(".thumb");
    if (button) choose(button);
    const previewButton = event.target.closest(".split-preview");
    if (previewButton) preview(previewButton);
  });

  form.addEventListener("keydown", function (event) {
    const button = event.target.closest(".thumb");
    if (!button) return;
    const moves = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
    if (!(event.key in moves)) return;
    const thumbs = Array.from(button.closest(".thumbs").querySelectorAll(".thumb"));
    const next = thumbs[(thumbs.indexOf(button) + moves[event.key] + thumbs.length) % thumbs.length];
    next.focus();
    event.preventDefault();
  });
})();
