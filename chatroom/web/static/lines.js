// One chat line as the page shows it (app.js for the rooms' logs, search.js for hits and the lines around
// them): time, nick in its colour, and the text, in its own direction, with its links clickable.
// Every piece of text goes in with textContent or as a text node, never as HTML.

import { el } from "./cards.js";
import { formatTime, nickHue } from "./names.js";

export { el };

// An http(s) URL or "www...." up to a space or a character URLs do not take unescaped.
const LINK = /\b(?:https?:\/\/|www\.)[^\s<>"'`\u0000-\u001f\u007f]+/giu;
const TRAILING = ".,;:!?*'\"";
const CLOSERS = { ")": "(", "]": "[", "}": "{" };

// Where a link found by LINK really ends: not at closing punctuation, nor at a bracket it did not open
// ("(see x.org/a)" ends before ")"; "x.org/wiki/Foo_(bar)" keeps it).
function linkEnd(text) {
  let end = text.length;
  for (;;) {
    const last = text[end - 1];
    if (TRAILING.includes(last)) end -= 1;
    else if (CLOSERS[last]) {
      const part = text.slice(0, end);
      if (part.split(CLOSERS[last]).length >= part.split(last).length) break;
      end -= 1;
    } else break;
  }
  return end;
}

// The href of a link as written, or null: only http and https ever become links (so never javascript:,
// data: or a file: URL); "www.example.org" means that host with the page's own scheme.
export function linkHref(written) {
  let url;
  try {
    url = /^www\./i.test(written) ? new URL(`//${written}`, location.href) : new URL(written);
  } catch {
    return null;
  }
  return (url.protocol === "http:" || url.protocol === "https:") && url.hostname ? url.href : null;
}

// [[text, href|null], ...]: text cut into plain runs and links (their text exactly as written).
export function linkRuns(text) {
  const runs = [];
  let at = 0;
  for (const match of String(text).matchAll(LINK)) {
    const written = match[0].slice(0, linkEnd(match[0]));
    const href = written && linkHref(written);
    if (!href) continue;
    if (match.index > at) runs.push([text.slice(at, match.index), null]);
    runs.push([written, href]);
    at = match.index + written.length;
  }
  if (at < text.length || !runs.length) runs.push([text.slice(at), null]);
  return runs;
}

// Fill node with text, its links as <a> opening a new tab that has no hold on this page (no opener, no
// referrer), unless links is false (inside a button, where a link cannot be); the node takes the
// direction of its text (dir="auto": Hebrew or Arabic runs right to left, in a line that stays left to right).
export function richText(node, text, links = true) {
  node.dir = "auto";
  node.replaceChildren();
  for (const [part, href] of linkRuns(String(text ?? ""))) {
    if (!href || !links) {
      node.append(part);
      continue;
    }
    const link = el("a", "link", part);
    link.href = href;
    link.target = "_blank";
    link.rel = "noopener noreferrer nofollow";
    node.append(link);
  }
  return node;
}



export function timeNode(iso) {
  const node = el("time", "time", formatTime(iso));
  if (iso) node.dateTime = iso;
  return node;
}

export function nickNode(nick) {
  const node = el("span", "nick", nick);
  node.style.setProperty("--hue", String(nickHue(nick)));
  return node;
}

const FOLD = 700;       // characters of a message past which it is folded
const FOLD_SHOWN = 500; // characters shown of a folded message

// A message's text as nodes: the span of its text, folded past FOLD characters (a 64 KiB line would be pages
// of a phone's screen) with a "Show all" button that unfolds it (none inside a button: links false).
function textNodes(text, links) {
  const full = String(text ?? "");
  const span = el("span", "text");
  if (full.length <= FOLD) return [richText(span, full, links)];
  let cut = full.slice(0, FOLD_SHOWN);
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);  // never half a character
  const space = cut.lastIndexOf(" ");
  if (space > FOLD_SHOWN - 100) cut = cut.slice(0, space);
  richText(span, `${cut}…`, links);
  if (!links) return [span];
  const more = el("button", "more", `Show all ${[...full].length} characters`);
  more.type = "button";
  more.addEventListener("click", () => {
    richText(span, full, true);
    more.remove();
  });
  return [span, " ", more];
}

// One line's nodes: time, then "nick: text", "* nick text" or a topic change. event: {type or kind, time,
// nick, text}; tag: a few words after the nick (" (private)"), or none; links: false inside a button.
export function lineNodes(event, { tag = "", links = true } = {}) {
  const textSpan = (text) => textNodes(text, links);
  const time = timeNode(event.time);
  const nick = nickNode(event.nick);
  const kind = event.kind || event.type;
  if (kind === "me") return [time, el("span", "star", "* "), nick, " ", ...textSpan(event.text)];
  if (kind === "topic") {
    const what = event.text ? "set the topic: " : "cleared the topic";
    return [time, el("span", "star", "* "), nick, " ", what, ...(event.text ? textSpan(event.text) : [])];
  }
  const extra = tag ? [el("span", "tag", tag)] : [];
  return [time, nick, ...extra, el("span", "sep", ": "), ...textSpan(event.text)];
}
