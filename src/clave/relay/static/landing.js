// Shows the exact `clave join` command for this invitation link.
// The secret after "#" never reaches any server: this script only reads it
// locally and makes no requests of any kind.
"use strict";

function shellQuote(text) {
  if (/^[A-Za-z0-9_.~:\/?#@=%+,-]+$/.test(text)) {
    return text;
  }
  return "'" + text.replace(/'/g, "'\\''") + "'";
}

function show() {
  const secret = location.hash.slice(1);
  const command = document.getElementById("command");
  const copy = document.getElementById("copy");
  const status = document.getElementById("status");
  if (!secret) {
    document.getElementById("join").hidden = true;
    document.getElementById("missing").hidden = false;
    return;
  }
  const link = location.origin + location.pathname + location.hash;
  const text = "clave join " + shellQuote(link);
  command.textContent = text;
  if (navigator.clipboard && window.isSecureContext) {
    copy.hidden = false;
    copy.addEventListener("click", () => {
      navigator.clipboard.writeText(text).then(
        () => { status.textContent = "Copied. Paste it into a terminal."; },
        () => { status.textContent = "Copy failed: select the command and copy it."; },
      );
    });
  }
}

document.addEventListener("DOMContentLoaded", show);
window.addEventListener("hashchange", show);
