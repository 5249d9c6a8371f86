// Chat text as DOM: web links become links that open in a new tab with no opener and
// no referrer; nothing is fetched (no preview), by the page or by the engine. Text is
// always text (no HTML is parsed).

import { h } from './dom.js';
import { t } from '../i18n.js';

// http(s) URLs up to whitespace; trailing punctuation that usually ends a sentence is
// left out of the link.
const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;
const TRAILING = /[.,;:!?)\]}'"]+$/;

/** A safe href for `raw`, or null: only http and https, parsed by the URL parser. */
export function safeHref(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
}

/** The nodes of one message's text: strings and <a> elements. */
export function chatNodes(text) {
  const out = [];
  let at = 0;
  for (const match of text.matchAll(URL_RE)) {
    let raw = match[0];
    const tail = raw.match(TRAILING);
    if (tail) raw = raw.slice(0, raw.length - tail[0].length);
    const href = raw ? safeHref(raw) : null;
    if (!href) continue;
    if (match.index > at) out.push(text.slice(at, match.index));
    out.push(h('a', { href, target: '_blank', rel: 'noopener noreferrer', class: 'msg-link' }, raw));
    at = match.index + raw.length;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

/** The note under our own message when it did not reach everyone, or null. */
export function deliveryNote({ missed, queued }) {
  if (queued) {
    return h('p', { class: 'msg-note', role: 'status' }, t('chat.queued'));
  }
  if (missed && missed.length) {
    const names = missed.length > 3
      ? t('chat.namesAndMore', { names: missed.slice(0, 3).join(', '), count: missed.length - 3 })
      : missed.join(', ');
    return h('p', { class: 'msg-note', role: 'status' }, t('chat.missed', { names }));
  }
  return null;
}
