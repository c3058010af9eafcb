// The chatroom page: rooms, messages, members, composer, account, reconnect, notifications.
// Wire: docs/protocol.md "WebSocket and JSON events" (wire.js); files: files.js; docs/web.md.
// All text goes into the page with textContent, never as HTML.

import { Wire } from "./wire.js";
import { Transfers } from "./files.js";
import { el, lineNodes, nickNode, richText, timeNode } from "./lines.js";
import { MemberList } from "./members.js";
import { mentions } from "./names.js";
import { Search } from "./search.js";

const $ = (id) => document.getElementById(id);
const OLDER_PAGE = 50;    // lines per "load older"
const CATCH_UP_PAGE = 50; // lines per /history since (the server's default page)
const CATCH_UP_ROUNDS = 20;
const PROBE_WAIT = 5000;  // ms the server has to answer a probe before the connection is taken for dead
const WAKE_GAP = 30000;   // ms between two ticks of a 10 s timer that mean the machine slept (or the tab froze)
const MAX_LOG = 1000;     // lines a room's log keeps on the page; older ones load again with "load older"
const encoder = new TextEncoder();

const state = {
  nick: null,
  account: null,
  current: null,      // the server's current room for this connection
  joined: [],         // rooms this connection is in, in join order
  selected: null,     // the room shown
  rooms: new Map(),   // name -> Room
  identity: null,     // the /login or /nick line to send again after a reconnect
  pendingIdentity: null,
  hidden: new Map(),  // kind of reply (REPLIES) -> how many automatic replies to keep out of the log
  connectedOnce: false,
  resyncing: false,
  quitting: false,
  maxLine: 65536,     // bytes of a line with its end the server takes (hello's max_line)
  early: [],         // lines that came before there was a room to show them in
  pendingEcho: [],    // own lines shown by the page (the server sends them to the others only)
  marker: null,       // the "new messages" line
  kicked: null,       // the part event of a kick out of the room shown, until the page shows another
};

class Room {
  constructor(name) {
    this.name = name;
    this.log = el("ol", "log");
    this.log.setAttribute("role", "log");
    this.log.setAttribute("aria-live", "polite");
    this.log.setAttribute("aria-label", `Messages in ${name}`);
    this.log.hidden = true;
    this.log.dataset.room = name;
    $("logs").append(this.log);
    this.ids = new Set();
    this.maxId = null;
    this.minId = null;
    this.unread = 0;        // messages from others not seen: in another room, or while the tab was away
    this.firstUnread = null; // the first of them
    this.members = new Set();
    this.topic = "";
    this.olderDone = false;
    this.olderPending = false;
    this.catchUp = 0; // rounds of /history since left for this room
    this.seenUpTo = null; // the last id the page had when it reconnected: history past it was missed, so new
  }
}

function room(name) {
  let entry = state.rooms.get(name);
  if (!entry) {
    entry = new Room(name);
    state.rooms.set(name, entry);
  }
  return entry;
}

// -- the wire -------------------------------------------------------------------------------------
const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const wire = new Wire(`${scheme}//${location.host}/ws`, {
  open: () => setStatus("connected; waiting for the server…"),
  event: (event) => (handlers[event.type] || (() => {}))(event),
  frame: (frame) => transfers.onFrame(frame),
  closed: ({ retryIn, reason }) => {
    transfers.lost();
    state.current = null;
    if (state.quitting || retryIn === null) {
      setStatus("disconnected");
      $("reconnect").hidden = true;
      return;
    }
    const why = reason ? ` (${reason})` : "";
    setStatus(`connection lost${why}; trying again in ${Math.ceil(retryIn / 1000)} s`);
    $("reconnect").hidden = false;
    document.body.classList.add("offline");
  },
  queued: (count) => {
    if (count > 0) setStatus(`connected; sending ${count} more line${count === 1 ? "" : "s"} at the server's pace…`);
    else if (wire.open && !state.resyncing) setStatus("connected");
  },
});
const members = new MemberList($("member-list"), $("members-heading"));
const transfers = new Transfers(wire, $("transfers"), announce);
const search = new Search({
  send: sendLines,
  joined: (name) => state.joined.includes(name),
  select: (name) => select(name, { tellServer: true }),
  back: () => state.selected && select(state.selected, { tellServer: false }),
  announce,
});

// Replies to lines the page sent by itself (not typed) stay out of the log: count one more of kind.
const REPLIES = {
  files: /^OK files /,
  caps: /^(OK caps |ERROR unknown capability)/,
  join: /^OK (join|current room) /,  // /join of a room one is in only switches to it
  history: /^OK history /,
};

function hideReply(kind) {
  state.hidden.set(kind, (state.hidden.get(kind) || 0) + 1);
}

// Lines to the server (the wire paces and batches them).
function sendLines(lines) {
  return lines.length ? wire.sendLines(lines.join("\n")) : true;
}

// -- events from the server -----------------------------------------------------------------------
const handlers = {
  hello(event) {
    wire.established(event.flood);
    state.hidden.clear();  // replies to what the page sent on a lost connection never come
    if (event.max_line) state.maxLine = Number(event.max_line);
    document.body.classList.remove("offline");
    $("reconnect").hidden = true;
    state.nick = event.nick;
    const lines = ["/files ask"];
    hideReply("files");
    const saved = localStorage.getItem("chatroom.nick");
    if (state.identity) lines.push(state.identity.line);
    else if (saved) {
      state.pendingIdentity = { name: saved, line: `/nick ${saved}` };
      lines.push(`/nick ${saved}`);
    }
    if (state.connectedOnce) lines.push(...resyncLines());
    state.connectedOnce = true;
    lines.push("/caps resume");  // after the name and login: its OK says transfers can resume (files.js)
    hideReply("caps");
    sendLines(lines);
    renderMe();
  },

  you(event) {
    if (state.nick && state.nick !== event.nick) {  // others get a "nick" event; the page learns its own here
      for (const entry of state.rooms.values()) {
        if (entry.members.delete(state.nick)) entry.members.add(event.nick);
      }
    }
    state.nick = event.nick;
    state.account = event.account;
    const wanted = state.pendingIdentity;
    if (wanted && wanted.name.toLowerCase() === String(event.nick).toLowerCase()) {
      state.identity = wanted;
      state.pendingIdentity = null;
      localStorage.setItem("chatroom.nick", event.nick);
    }
    if (!state.pendingIdentity) transfers.settled();  // tokens bound to an account are presented only now
    const before = state.current;
    state.current = event.room;
    state.joined = event.rooms || [];
    for (const name of state.joined) room(name);
    if (!state.resyncing && event.room && (event.room !== before || !state.joined.includes(state.selected))) {
      select(event.room, { tellServer: false });
    }
    const kicked = state.kicked;
    state.kicked = null;
    if (kicked && state.selected && kicked.room !== state.selected) notice(room(state.selected), kicked.text, kicked.time, "part");
    renderRooms();
    renderRoomHeader();
    renderMe();
  },

  members(event) {
    const entry = room(event.room);
    entry.members = new Set(event.nicks || []);
    entry.topic = event.topic || "";
    if (event.room === state.selected) renderRoomHeader();
  },

  msg: (event) => message(event),
  me: (event) => message(event),
  topic(event) {
    message(event);
    if (!event.history) {
      room(event.room).topic = event.text || "";
      if (event.room === state.selected) renderRoomHeader();
    }
  },

  join(event) {
    const entry = room(event.room);
    entry.members.add(event.nick);
    if (!event.quiet) notice(entry, event.text, event.time, "join");  // quiet: a big room (--announce-limit)
    memberChanged(event.room, event.nick, true);
  },

  part(event) {
    const entry = room(event.room);
    entry.members.delete(event.nick);
    if (!event.quiet) notice(entry, event.text, event.time, "part");
    if (event.nick === state.nick) {  // kicked (a /part of one's own is not told back): say it where the page is
      if (event.room !== state.selected && state.selected) notice(room(state.selected), event.text, event.time, "part");
      else state.kicked = event;  // the "you" event that follows moves the page to another room
    }
    memberChanged(event.room, event.nick, false);
  },

  nick(event) {
    let shown = false;
    for (const entry of state.rooms.values()) {
      if (entry.members.delete(event.old)) {
        entry.members.add(event.nick);
        notice(entry, event.text, event.time, "nick");
        memberChanged(entry.name, event.old, false);
        memberChanged(entry.name, event.nick, true);
        shown = true;
      }
    }
    if (!shown && state.selected) notice(room(state.selected), event.text, event.time, "nick");
  },

  hit: (event) => search.onHit(event),
  notice: (event) => notice(room(event.room), event.text, event.time, "notice"),
  raw: (event) => notice(room(event.room), event.text, event.time, "raw"),

  private(event) {
    const target = state.selected ? room(state.selected) : null;
    if (!target) return;
    const item = el("li", "private");
    item.append(...lineNodes({ ...event, type: "msg" }, { tag: " (private)" }));
    append(target, item, null);
    maybeNotify(`${event.nick} (private)`, event.text, true);
  },

  line(event) {
    const text = String(event.text);
    if (/^OK caps .*\bresume\b/.test(text)) transfers.enable();
    if (transfers.quietLine(text)) return;
    transfers.onLine(text);
    if (search.onLine(text)) return;
    historyReply(text);
    if (identityReply(text)) return;
    for (const [kind, count] of state.hidden) {
      if (count > 0 && REPLIES[kind].test(text)) {
        state.hidden.set(kind, count - 1);
        return;
      }
    }
    const item = el("li", `line ${event.kind || "info"}`, text);
    if (state.selected) append(room(state.selected), item, null);
    else if (state.early.length < 50) state.early.push(item);  // the welcome comes before any room
  },
};

// Replies that settle a /login, /register or /nick: remember it (for reconnects) or forget it.
function identityReply(text) {
  const wanted = state.pendingIdentity;
  if (!wanted) return false;
  if (text.startsWith("OK registered") || text.startsWith("OK logged in")) {
    state.identity = wanted;
    state.pendingIdentity = null;
    localStorage.setItem("chatroom.nick", wanted.name);
  } else if (text.startsWith("ERROR") && /nick|login|password|account|registered/i.test(text)) {
    state.pendingIdentity = null;
    if (!state.identity) localStorage.removeItem("chatroom.nick");
  }
  return false;
}

// "OK history #room N lines": finishes a "load older" page or a round of catching up.
function historyReply(text) {
  const match = /^OK history (#\S+) (\d+) lines?/.exec(text);
  if (!match) return;
  const entry = state.rooms.get(match[1]);
  if (!entry) return;
  const count = Number(match[2]);
  if (entry.olderPending) {
    entry.olderPending = false;
    if (count < OLDER_PAGE) entry.olderDone = true;
    if (entry.name === state.selected) renderOlder();
  } else if (entry.catchUp > 0) {
    entry.catchUp -= 1;
    if (count >= CATCH_UP_PAGE && entry.catchUp > 0 && entry.maxId !== null) {
      hideReply("history");
      sendLines([`/history ${entry.name} since ${entry.maxId} ${CATCH_UP_PAGE}`]);
    } else {
      entry.catchUp = 0;
      finishResync();
    }
  }
}

// After a reconnect: identify, rejoin every room, fetch what was missed, show the same room.
function resyncLines() {
  const lines = [];
  state.resyncing = true;
  const rooms = [...state.rooms.values()].filter((entry) => state.joined.includes(entry.name));
  for (const entry of rooms) {
    entry.seenUpTo = entry.maxId ?? 0;  // a room the page had no line of: whatever comes now is new
    hideReply("join");
    lines.push(`/join ${entry.name}`);
    if (entry.maxId !== null) {
      entry.catchUp = CATCH_UP_ROUNDS;
      hideReply("history");
      lines.push(`/history ${entry.name} since ${entry.maxId} ${CATCH_UP_PAGE}`);
    }
  }
  if (state.selected) {
    hideReply("join");
    lines.push(`/join ${state.selected}`);
  }
  if (!rooms.some((entry) => entry.catchUp > 0)) setTimeout(finishResync, 0);
  else setTimeout(() => finishResync(true), 10000);  // a room that refused us must not hold the page
  return lines;
}

function finishResync(force = false) {
  if (!state.resyncing) return;
  if (!force && [...state.rooms.values()].some((entry) => entry.catchUp > 0)) return;
  for (const entry of state.rooms.values()) entry.catchUp = 0;
  state.resyncing = false;
  if (state.current && !state.joined.includes(state.selected)) select(state.current, { tellServer: false });
  setStatus("connected");
  announce("reconnected; missed messages loaded");
  document.body.dataset.synced = String(Number(document.body.dataset.synced || 0) + 1);
}

// -- the log --------------------------------------------------------------------------------------
// Put item in the room's log: ordered by history id when it has one, else at the end.
function append(entry, item, id) {
  const log = entry.log;
  const nearBottom = log === currentLog() && isNearBottom();
  if (id === null || entry.maxId === null || id > entry.maxId) {
    log.append(item);
  } else {
    let before = null;
    for (const child of log.children) {
      if (child.dataset.id && Number(child.dataset.id) > id) {
        before = child;
        break;
      }
    }
    const scroller = $("logs");
    const height = scroller.scrollHeight;
    log.insertBefore(item, before);
    if (!nearBottom && log === currentLog()) scroller.scrollTop += scroller.scrollHeight - height;
  }
  if (id !== null) {
    item.dataset.id = String(id);
    entry.ids.add(id);
    entry.maxId = entry.maxId === null ? id : Math.max(entry.maxId, id);
    const oldest = entry.minId;
    entry.minId = entry.minId === null ? id : Math.min(entry.minId, id);
    if (entry.minId !== oldest && entry.name === state.selected) renderOlder();
  }
  if (nearBottom) scrollToBottom();
  if (log.childElementCount > MAX_LOG && (log !== currentLog() || nearBottom)) prune(entry);
}

// Drop the oldest lines of a room's log past MAX_LOG (not while the person reads back in it): a tab left open
// all day stays as light as it started. "Load older messages" fetches them again from the server.
function prune(entry) {
  const log = entry.log;
  while (log.childElementCount > MAX_LOG) {
    const first = log.firstElementChild;
    if (first.dataset.id) entry.ids.delete(Number(first.dataset.id));
    first.remove();
  }
  let oldest = log.firstElementChild;
  while (oldest && !oldest.dataset.id) oldest = oldest.nextElementSibling;
  entry.minId = oldest ? Number(oldest.dataset.id) : null;
  entry.olderDone = false;
  if (entry.name === state.selected) renderOlder();
}

function message(event) {
  if (search.takes(event)) return;  // the lines around a search hit being opened
  const entry = room(event.room);
  const id = typeof event.id === "number" ? event.id : null;
  if (id !== null && entry.ids.has(id)) return;
  const own = event.nick === state.nick;
  // The server does not send a speaker its own lines; the page shows them at once (echo()). When the
  // stored copy comes back (catching up after a reconnect, "load older"), it replaces the local one.
  const index = state.pendingEcho.findIndex((echo) => echo.room === event.room && echo.nick === event.nick
    && echo.type === event.type && echo.text === event.text);
  if (index >= 0) state.pendingEcho.splice(index, 1)[0].node.remove();
  const item = el("li", `${event.type}${event.history ? " history" : ""}`);
  item.append(...lineNodes(event));
  if (event.account) item.dataset.account = event.account;
  if (!own && mentions(event.text, state.nick)) item.classList.add("mention");
  append(entry, item, id);
  const missed = event.history && id !== null && entry.seenUpTo !== null && id > entry.seenUpTo;
  if ((!event.history || missed) && !own) {
    if (event.room !== state.selected || document.hidden) {  // not seen yet: another room, or the tab is away
      if (entry.unread === 0) entry.firstUnread = item;
      entry.unread += 1;
      renderRooms();
    }
    if (mentions(event.text, state.nick)) maybeNotify(`${event.nick} in ${event.room}`, event.text, false);
    updateTitle();
  }
}

// A room notice ("* alice joined lobby"); a plugin's raw line is shown as it is.
function notice(entry, text, time, kind) {
  const item = el("li", `notice notice-${kind}`);
  item.append(timeNode(time), el("span", "text", kind === "raw" ? text : `* ${text}`));
  append(entry, item, null);
}

const currentLog = () => (state.selected ? room(state.selected).log : null);
const isNearBottom = () => {
  const scroller = $("logs");
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
};
const scrollToBottom = () => {
  const scroller = $("logs");
  scroller.scrollTop = scroller.scrollHeight;
};

// -- rendering ------------------------------------------------------------------------------------
function renderRooms() {
  const list = $("room-list");
  list.replaceChildren();
  for (const name of state.joined) {
    const entry = room(name);
    const button = el("button", "room", name);
    button.type = "button";
    button.dataset.room = name;
    if (name === state.selected) button.setAttribute("aria-current", "true");
    if (entry.unread > 0) {
      const badge = el("span", "unread", String(entry.unread));
      badge.setAttribute("aria-label", `${entry.unread} unread`);
      button.append(" ", badge);
    }
    button.addEventListener("click", () => {
      select(name, { tellServer: true });
      closeSidebar();
      $("composer-input").focus();
    });
    const item = el("li");
    item.append(button);
    list.append(item);
  }
}

// The room shown is one the page left (the server put it in no room) until it joins one again.
const leftSelected = () => state.selected !== null && state.connectedOnce && !state.resyncing
  && !state.joined.includes(state.selected);

function renderRoomHeader() {
  const entry = state.selected ? room(state.selected) : null;
  const left = leftSelected();
  $("room-name").textContent = entry ? `${entry.name}${left ? " (you left it)" : ""}` : "no room";
  richText($("topic"), entry && entry.topic && !left ? entry.topic : "");
  $("topic").hidden = !(entry && entry.topic && !left);
  $("composer-input").placeholder = entry && !left ? `Message ${entry.name}` : "/join #room";
  renderMembers();
  renderOlder();
}

// The member list of the room shown (members.js), drawn whole (a room switch, a members event).
function renderMembers() {
  const entry = state.selected && !leftSelected() ? room(state.selected) : null;
  members.show(entry && entry.name, entry ? entry.members : [], state.nick);
}

// nick joined (present) or left the room name: its item in the list if that room is shown.
function memberChanged(name, nick, present) {
  if (name === state.selected && !members.changed(name, nick, present)) renderMembers();
}

function renderOlder() {
  const entry = state.selected ? room(state.selected) : null;
  const button = $("load-older");
  button.hidden = !entry || !$("context-bar").hidden;
  if (!entry) return;
  const none = entry.olderDone || entry.minId === null || entry.minId <= 1;
  button.disabled = none || entry.olderPending;
  button.textContent = none ? "No older messages" : entry.olderPending ? "Loading…" : "Load older messages";
}

function renderMe() {
  const who = state.account ? `${state.nick} (logged in)` : state.nick || "";
  $("me").textContent = who ? `You are ${who}` : "";
  if (!state.resyncing && wire.open) setStatus("connected");
}

function updateTitle() {
  const total = [...state.rooms.values()].reduce((sum, entry) => sum + entry.unread, 0);
  document.title = total > 0 ? `(${total}) chatroom` : "chatroom";
}

function setStatus(text) {
  $("status").textContent = text;
}

function announce(text) {
  const region = $("announce");
  region.textContent = "";
  region.append(el("span", "", text));
}

function select(name, { tellServer }) {
  if (!name) return;
  search.closeContext();
  const entry = room(name);
  if (state.selected && state.rooms.has(state.selected)) room(state.selected).log.hidden = true;
  state.selected = name;
  entry.log.hidden = false;
  if (state.early.length) entry.log.prepend(...state.early.splice(0));
  markSeen(entry);
  if (tellServer && state.current !== name) {
    hideReply("join");
    sendLines([`/join ${name}`]);
  }
  renderRooms();
  renderRoomHeader();
  updateTitle();
  scrollToBottom();
}

// The room is looked at: its unread messages are seen, and a "new messages" line (one in the page) marks
// where they start, until the next time.
function markSeen(entry) {
  const first = entry.firstUnread;
  if (entry.unread > 0 && first && first.parentNode === entry.log) {
    state.marker = state.marker || el("li", "unseen", "new messages");
    entry.log.insertBefore(state.marker, first);
  }
  entry.firstUnread = null;
  entry.unread = 0;
}

function closeSidebar() {
  document.body.classList.remove("sidebar-open");
  $("menu-toggle").setAttribute("aria-expanded", "false");
}

// -- notifications --------------------------------------------------------------------------------
function maybeNotify(title, body, always) {
  if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
  if (!always && !body) return;
  try {
    new Notification(title, { body, tag: "chatroom" });
  } catch {
    // some browsers only allow notifications from a service worker; the unread count remains
  }
}

function renderNotifyButton() {
  const button = $("notify");
  button.hidden = !("Notification" in window) || Notification.permission !== "default";
}

// -- is the connection alive? -------------------------------------------------------------------------
// After the tab was away, the machine slept or the network came back, ask the server something and give it
// PROBE_WAIT to answer (wire.expectAnswer); a silent connection is closed, and the page reconnects and catches up.
function probe() {
  if (!wire.open) return;
  hideReply("files");
  wire.sendLines("/files ask", { sent: () => wire.expectAnswer(PROBE_WAIT) });
}

// -- the composer ---------------------------------------------------------------------------------
function submit() {
  const input = $("composer-input");
  const lines = input.value.split(/\r?\n/).filter((line) => line.trim() !== "");
  if (!lines.length) return;
  if (!wire.open) {
    announce("not connected: the message was kept");
    return;
  }
  const long = lines.find((line) => encoder.encode(line).length + 1 > state.maxLine);
  if (long !== undefined && state.selected) {  // kept in the box: nothing of it is sent
    const size = encoder.encode(long).length;
    append(room(state.selected), el("li", "line error",
      `not sent: a line of ${size} bytes is longer than the server takes (${state.maxLine - 1}); send it as a file`), null);
    return;
  }
  const out = [];  // [line, its echo or null]
  for (const line of lines) {
    const command = /^\/(\S+)\s*(.*)$/.exec(line);
    const name = command && !line.startsWith("//") ? command[1].toLowerCase() : null;
    if (name === "sendfile") {
      $("file-input").click();
      continue;
    }
    if (name === "quit") state.quitting = true;
    if (name === "search") search.expect(command[2].trim());
    if (name === "login") {
      const [nick, password] = command[2].split(/\s+/);
      if (nick && password) state.pendingIdentity = { name: nick, line: `/login ${nick} ${password}` };
    } else if (name === "nick") {
      const nick = command[2].trim();
      if (nick) state.pendingIdentity = { name: nick, line: `/nick ${nick}` };
    } else if (name === "register" && state.nick) {
      const password = command[2].trim();
      if (password) state.pendingIdentity = { name: state.nick, line: `/login ${state.nick} ${password}` };
    }
    if ((!name || name === "me") && leftSelected()) {  // never join the room again behind the person's back
      append(room(state.selected), el("li", "line error", "not sent: you are in no room (/join #room)"), null);
      continue;
    }
    if ((!name || name === "me") && state.selected) {
      if (state.current !== state.selected) {
        hideReply("join");
        out.push([`/join ${state.selected}`, null]);
        state.current = state.selected;
      }
      if (name === "me") out.push([line, echo(state.selected, "me", command[2])]);
      else out.push([line, echo(state.selected, "msg", line.startsWith("//") ? line.slice(1) : line)]);
      continue;
    }
    out.push([line, null]);
  }
  for (const [line, node] of out) {
    wire.sendLines(line, node ? {
      sent: () => node.classList.remove("pending"),
      lost: () => {
        node.classList.replace("pending", "unsent");
        node.append(el("span", "tag", " (not sent: the connection was lost)"));
      },
    } : {});
  }
  if (state.quitting) wire.stop();
  input.value = "";
  autosize();
}

// Show an own chat line (type "msg") or /me ("me") at once, "pending" until the wire sends it: the server
// sends it to the others only. Returns its node.
function echo(name, type, text) {
  const item = el("li", `${type} own pending`);
  item.append(...lineNodes({ type, time: new Date().toISOString(), nick: state.nick, text }));
  state.pendingEcho.push({ room: name, nick: state.nick, type, text, node: item });
  if (state.pendingEcho.length > 500) state.pendingEcho.shift();
  append(room(name), item, null);
  scrollToBottom();
  return item;
}

function autosize() {
  const input = $("composer-input");
  input.rows = Math.min(6, Math.max(1, input.value.split("\n").length));
}

// -- wiring up ------------------------------------------------------------------------------------
function start() {
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  $("composer-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  $("composer-input").addEventListener("input", autosize);
  $("file-button").addEventListener("click", () => $("file-input").click());
  $("file-input").addEventListener("change", () => {
    for (const file of $("file-input").files) transfers.send(file);
    $("file-input").value = "";
  });
  const drop = $("main");
  drop.addEventListener("dragover", (event) => {
    if (event.dataTransfer && [...event.dataTransfer.types].includes("Files")) {
      event.preventDefault();
      drop.classList.add("dragging");
    }
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("dragging"));
  drop.addEventListener("drop", (event) => {
    drop.classList.remove("dragging");
    if (!event.dataTransfer || !event.dataTransfer.files.length) return;
    event.preventDefault();
    for (const file of event.dataTransfer.files) transfers.send(file);
  });
  for (const type of ["dragover", "drop"]) {  // a file dropped beside the messages must not replace the page
    window.addEventListener(type, (event) => {
      if (event.dataTransfer && [...event.dataTransfer.types].includes("Files")) event.preventDefault();
    });
  }
  $("load-older").addEventListener("click", () => {
    const entry = state.selected ? room(state.selected) : null;
    if (!entry || entry.minId === null || entry.olderPending) return;
    entry.olderPending = true;
    renderOlder();
    hideReply("history");
    sendLines([`/history ${entry.name} before ${entry.minId} ${OLDER_PAGE}`]);
  });
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("login-name").value.trim();
    const password = $("login-password").value;
    if (!name) return;
    const line = password ? `/login ${name} ${password}` : `/nick ${name}`;
    state.pendingIdentity = { name, line };
    sendLines([line]);
    $("login-password").value = "";
    $("account").open = false;
    $("composer-input").focus();
  });
  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    let name = $("join-input").value.trim();
    if (!name) return;
    if (!name.startsWith("#")) name = `#${name}`;
    sendLines([`/join ${name}`]);
    $("join-input").value = "";
    $("composer-input").focus();
  });
  $("menu-toggle").addEventListener("click", () => {
    const open = document.body.classList.toggle("sidebar-open");
    $("menu-toggle").setAttribute("aria-expanded", String(open));
  });
  $("notify").addEventListener("click", async () => {
    await Notification.requestPermission();
    renderNotifyButton();
  });
  $("reconnect").addEventListener("click", () => wire.retryNow());
  search.start();
  window.addEventListener("online", () => (wire.open ? probe() : wire.retryNow()));
  let tick = Date.now();
  setInterval(() => {
    if (Date.now() - tick > WAKE_GAP) probe();
    tick = Date.now();
  }, 10000);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) probe();
    if (!document.hidden && state.selected) {
      markSeen(room(state.selected));
      renderRooms();
    }
    updateTitle();
  });
  document.addEventListener("keydown", (event) => {  // Escape: fold the rooms panel away, else close search
    if (event.key !== "Escape" || event.defaultPrevented) return;
    if (document.body.classList.contains("sidebar-open")) {
      const inside = $("sidebar").contains(document.activeElement);
      closeSidebar();
      if (inside) $("menu-toggle").focus();
    } else if (!$("search-panel").hidden) {
      $("search-close").click();
    }
  });
  document.addEventListener("keydown", (event) => {  // Alt+Up/Down: previous/next room
    if (!event.altKey || (event.key !== "ArrowUp" && event.key !== "ArrowDown")) return;
    const index = state.joined.indexOf(state.selected);
    const next = state.joined[index + (event.key === "ArrowUp" ? -1 : 1)];
    if (next) {
      event.preventDefault();
      select(next, { tellServer: true });
    }
  });
  renderNotifyButton();
  renderRoomHeader();
  wire.connect();
  $("composer-input").focus();
}

start();
