// The search box: /search over the WebSocket's lines, hits back as "hit" events (docs/protocol.md "Search"),
// "More results" (/search --more), and a hit that opens its room at that message with the lines around it
// (/history #room around ID). All text goes into the page with textContent, never as HTML.

import { el, lineNodes } from "./lines.js";

const AROUND = 21; // lines shown around a hit: 10 before it, the hit, the rest after

export class Search {
  // send(lines): lines to the server; joined(room): is the page in it; select(room): show a room the page is in;
  // back(): show the room the page was showing; announce(text): say it to screen readers.
  constructor({ send, joined, select, back, announce }) {
    Object.assign(this, { send, joined, select, back, announce });
    this.$ = (id) => document.getElementById(id);
    this.pending = false;   // a /search was sent: its "OK search" or ERROR is this panel's
    this.jump = null;       // { room, id, pending }: the hit being opened
    this.count = 0;
  }

  start() {
    this.$("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const words = this.$("search-input").value.trim();
      if (!words) return;
      this.expect(words);
      this.send([`/search ${words}`]);
    });
    this.$("search-more").addEventListener("click", () => {
      this.expect("--more");
      this.send(["/search --more"]);
    });
    this.$("search-close").addEventListener("click", () => {
      this.$("search-panel").hidden = true;
      this.$("search-input").focus();
    });
    this.$("context-back").addEventListener("click", () => {
      this.closeContext();
      this.back();
    });
    this.$("context-join").addEventListener("click", () => {
      if (this.jump) this.send([`/join ${this.jump.room}`]);
    });
  }

  // A /search is on its way (typed in the box or the composer): a new one clears the results.
  expect(words) {
    this.pending = true;
    this.$("search-panel").hidden = false;
    this.$("search-more").hidden = true;
    this.$("search-status").textContent = "Searching…";
    if (words !== "--more") {
      this.$("search-results").replaceChildren();
      this.count = 0;
      this.$("search-title").textContent = `Search: ${words}`;
    }
  }

  onHit(event) {
    this.$("search-panel").hidden = false;
    const button = el("button", "hit");
    button.type = "button";
    button.dataset.room = event.room;
    button.dataset.id = String(event.id);
    button.append(el("span", "hit-room", event.room), " ", ...lineNodes(event, { links: false }));
    button.addEventListener("click", () => this.open(event.room, event.id));
    const item = el("li");
    item.append(button);
    this.$("search-results").append(item);
    this.count += 1;
  }

  // A line of the line protocol: true when it belongs to the search or to a hit being opened.
  onLine(text) {
    const jump = this.jump;
    if (jump && jump.pending && (text.startsWith(`OK history ${jump.room} `) || text.startsWith("ERROR"))) {
      jump.pending = false;
      if (text.startsWith("ERROR")) this.$("context-title").textContent = text;
      else this.showHit();
      return true;
    }
    if (text.startsWith("OK search ")) {
      this.pending = false;
      const more = text.includes("more: /search --more");
      this.$("search-more").hidden = !more;
      const shown = this.count ? `${this.count} shown` : "no messages found";
      const reached = /searched back to ([^;)]+)/.exec(text);
      this.$("search-status").textContent = shown + (reached ? `; searched back to ${reached[1]}` : "")
        + (more ? "; there may be more" : "");
      this.announce(`search: ${this.$("search-status").textContent}`);
      return true;
    }
    if (this.pending && text.startsWith("ERROR")) {
      this.pending = false;
      this.$("search-status").textContent = text.replace(/^ERROR /, "");
      return true;
    }
    return false;
  }

  // A history event while a hit is being opened: its lines go to the context view, not the room's log.
  takes(event) {
    const jump = this.jump;
    if (!jump || !jump.pending || !event.history || event.room !== jump.room) return false;
    const item = el("li", `${event.type} history`);
    item.dataset.id = String(event.id);
    item.append(...lineNodes(event));
    this.$("context-log").append(item);
    return true;
  }

  // Show the room of a hit at that message, with the lines around it.
  open(room, id) {
    if (this.joined(room)) this.select(room);
    this.jump = { room, id, pending: true };
    this.$("context-log").replaceChildren();
    this.$("context-title").textContent = `${room} around message ${id}`;
    this.$("context-join").hidden = this.joined(room);
    this.$("context-join").textContent = `Join ${room}`;
    for (const log of document.querySelectorAll("#logs ol.log")) log.hidden = log.id !== "context-log";
    this.$("load-older").hidden = true;
    this.$("context-log").hidden = false;
    this.$("context-bar").hidden = false;
    this.send([`/history ${room} around ${id} ${AROUND}`]);
  }

  showHit() {
    const target = this.$("context-log").querySelector(`li[data-id="${this.jump.id}"]`)
      || this.$("context-log").querySelector("li");
    if (!target) {
      this.$("context-title").textContent = `${this.jump.room}: that message is gone`;
      return;
    }
    target.classList.add("target");
    target.tabIndex = -1;
    target.scrollIntoView({ block: "center" });
    target.focus({ preventScroll: true });
    this.announce(`${this.jump.room}, the message found and the lines around it`);
  }

  // Leave the context view (the page shows a room again).
  closeContext() {
    if (this.$("context-bar").hidden) return;
    this.jump = null;
    this.$("context-bar").hidden = true;
    this.$("context-log").hidden = true;
    this.$("context-log").replaceChildren();
  }
}
