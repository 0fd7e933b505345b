// The assistant page works with its buttons alone; this only saves two clicks.
(function () {
  "use strict";
  // Back from the consent screen: run the paused tool call again at once.
  const resume = document.getElementById("continue-form");
  if (resume && resume.dataset.auto === "1") {
    resume.submit();
    return;
  }
  // Waiting for the user's approval: ask the app every interval Auth0 gave, until answered.
  const check = document.getElementById("approval-form");
  if (!check) return;
  const every = 1000 * Math.max(1, Number(check.dataset.interval) || 5);
  async function poll() {
    const answer = await fetch(check.action, {
      method: "POST",
      body: new FormData(check),
      headers: { Accept: "application/json" },
    });
    if (!answer.ok) return; // the button is still there
    if ((await answer.json()).waiting) setTimeout(poll, every);
    else location.assign(check.dataset.done);
  }
  setTimeout(poll, every);
})();
