// The member list of the room the page shows (app.js): in the order people expect (case aside, numbers by
// value: guest2 before guest10), drawn whole when the room changes, then kept item by item, so that in a room
// of thousands a join or a leave costs one list item, not the whole list. Nicks go in as text (lines.js).

import { el, nickNode } from "./lines.js";

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
export const byNick = (a, b) => collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);

export class MemberList {
  // list: the <ul>; heading: its heading ("Members (N)").
  constructor(list, heading) {
    this.list = list;
    this.heading = heading;
    this.room = null;   // the room listed (null: none)
    this.you = null;    // the page's own nick, marked "(you)"
    this.nicks = [];    // sorted by byNick
    this.items = new Map(); // nick -> li
  }

  // List every nick of room (an iterable), you marked.
  show(room, nicks, you) {
    this.room = room;
    this.you = you;
    this.nicks = [...nicks].sort(byNick);
    this.items = new Map(this.nicks.map((nick) => [nick, this.item(nick)]));
    this.list.replaceChildren(...this.items.values());
    this.count();
  }

  // nick joined (present) or left (!present) room; false when room is not the one listed (nothing done).
  changed(room, nick, present) {
    if (room !== this.room) return false;
    if (this.items.has(nick) === present) return true;
    let low = 0;
    let high = this.nicks.length;
    while (low < high) {  // where nick is, or goes
      const middle = (low + high) >> 1;
      if (byNick(this.nicks[middle], nick) < 0) low = middle + 1;
      else high = middle;
    }
    if (present) {
      const item = this.item(nick);
      this.list.insertBefore(item, low < this.nicks.length ? this.items.get(this.nicks[low]) : null);
      this.nicks.splice(low, 0, nick);
      this.items.set(nick, item);
    } else {
      this.items.get(nick).remove();
      this.items.delete(nick);
      this.nicks.splice(low, 1);
    }
    this.count();
    return true;
  }

  item(nick) {
    const item = el("li");
    item.append(nickNode(nick));
    if (nick === this.you) item.append(el("span", "you", " (you)"));
    return item;
  }

  count() {
    this.heading.textContent = `Members (${this.nicks.length})`;
  }
}
