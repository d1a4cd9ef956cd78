// crossdeploy console: refreshes the page's <main> while the server says it is live (x-console-live), so a
// running deployment is seen to finish without a reload. The HTML comes from the same server render as the
// page itself (every value escaped there); the Content-Security-Policy allows no inline script at all.
(() => {
  const main = document.getElementById('main');
  if (!main) return;
  const INTERVAL_MS = 1000;
  let live = main.dataset.live === 'true';
  // One refresh more after a page turns final: its last events and log lines land just after the status.
  let extra = 1;
  let last = main.innerHTML;
  // How many refreshes this page has had (on <html>, which is never replaced): tests and curious users read it.
  let refreshes = 0;

  async function tick() {
    if (!live && extra-- <= 0) return;
    try {
      const response = await fetch(location.href, {
        headers: { 'x-console-fragment': '1' },
        credentials: 'same-origin',
        cache: 'no-store',
      });
      if (response.ok) {
        const text = await response.text();
        if (text !== last) replace(text);
        live = response.headers.get('x-console-live') === 'true';
        refreshes++;
        document.documentElement.dataset.refreshes = String(refreshes);
      }
    } catch {
      // The server restarts or the network blinks: try again at the next tick.
    }
    setTimeout(tick, INTERVAL_MS);
  }

  /** Swaps the content, keeping keyboard focus on the same link or control when it is still there. */
  function replace(text) {
    const active = document.activeElement;
    const key = active && main.contains(active) ? active.getAttribute('href') || active.id : null;
    const logs = main.querySelector('pre.logs');
    const atBottom = logs ? logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4 : false;
    main.innerHTML = text;
    last = main.innerHTML;
    if (key) {
      const again = [...main.querySelectorAll('a, button, input, [tabindex]')].find(
        (el) => el.getAttribute('href') === key || el.id === key,
      );
      if (again) again.focus();
    }
    const newLogs = main.querySelector('pre.logs');
    if (newLogs && atBottom) newLogs.scrollTop = newLogs.scrollHeight;
  }

  setTimeout(tick, INTERVAL_MS);
})();
