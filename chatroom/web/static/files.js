// File transfers of the page (docs/protocol.md "File transfer frames", "Consent and quotas", and the
// binary messages of "WebSocket and JSON events"). Sending: `/sendfile "NAME" SIZE`, wait for
// `OK sendfile ID NAME`, then `file-data ID` chunks and `file-end ID SHA256`. Receiving: a
// `file-offer` shows Accept/Decline; after `file-begin` the chunks are kept in memory and, at
// `file-end`, size and SHA-256 are checked before a Save link is offered. Every name shown or saved
// is passed through safeName first; every text goes in with textContent.

import { Card, OCTETS } from "./cards.js";
import { formatSize, safeName } from "./names.js";
import { Resumes } from "./resume.js";
import { sha256Blob } from "./sha256.js";

const CHUNK = 256 * 1024;           // bytes per file-data frame (the server takes up to 4 MiB)
const HIGH_WATER = 2 * 1024 * 1024; // stop queueing while the socket holds this much unsent
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class Transfers {
  // wire: the Wire; list: the <ul> of cards; announce(text): tell screen readers.
  constructor(wire, list, announce) {
    this.wire = wire;
    this.list = list;
    this.announce = announce;
    this.waiting = [];           // outgoing offers waiting for OK/ERROR sendfile, in order
    this.outgoing = new Map();   // id -> {name, file, card, hash, stopped}
    this.incoming = new Map();   // id -> {name, size, sender, card, chunks, received}
    this.resume = new Resumes(wire, list, announce);  // transfers that can resume (resume.js)
  }

  // The server took /caps resume (enable), and the page's name and login are settled (settled): records
  // are presented, and offers from now on can resume.
  enable() {
    this.resume.enable();
  }

  settled() {
    this.resume.settle();
  }

  // -- sending ------------------------------------------------------------------------------------
  send(file) {
    const name = safeName(file.name);
    const card = new Card(this.list, `${name} (${formatSize(file.size)}) to the room`, "out");
    card.set("offering…", "offering");
    if (this.resume.on) {
      const entry = { name, file, card, resumable: true, stopped: false, id: null };
      this.waiting.push(entry);
      this.resume.offer(entry).then((sent) => {
        if (sent) return;
        this.waiting.splice(this.waiting.indexOf(entry), 1);
        if (!card.item.dataset.state || card.item.dataset.state === "offering") card.set("not sent: not connected", "failed");
      });
      return;
    }
    const entry = { name, file, card, hash: sha256Blob(file), stopped: false, id: null };
    entry.hash.catch(() => {});
    this.waiting.push(entry);
    if (!this.wire.sendLines(`/sendfile "${name}" ${file.size}`)) {
      this.waiting.pop();
      card.set("not sent: not connected", "failed");
    }
  }

  // A reply to the page's own resume or cancel of a transfer: taken here, not shown in the log.
  quietLine(text) {
    return this.resume.onLine(text);
  }

  // A `line` event's text; true when it was about one of our offers (it is still shown in the log).
  onLine(text) {
    const ok = /^OK sendfile (\d+) (.*)$/.exec(text);
    if (ok) {
      const index = Math.max(0, this.waiting.findIndex((entry) => entry.name === ok[2]));
      const entry = this.waiting.splice(index, 1)[0];
      if (!entry) return false;
      entry.id = ok[1];
      if (entry.resumable) this.resume.started(entry, ok[1]);
      else {
        this.outgoing.set(entry.id, entry);
        this.pump(entry);
      }
      return true;
    }

    if (text.startsWith("ERROR sendfile ")) {
      const index = this.waiting.findIndex((entry) => text.startsWith(`ERROR sendfile ${entry.name}: `));
      const entry = this.waiting.splice(index < 0 ? 0 : index, 1)[0];
      if (!entry) return false;
      entry.card.set(text.replace(/^ERROR sendfile [^:]*: /, "not sent: "), "failed");
      return true;
    }
    for (const entry of this.waiting) {  // "* offering "NAME" ... waiting", "* "NAME": accepted by bob"
      if (text.startsWith("* ") && text.includes(`"${entry.name}"`)) entry.card.set(text.slice(2));
    }
    return false;
  }

  async pump(entry) {
    const { file, card, id } = entry;
    card.set("sending…", "sending");
    const cancel = card.button("Cancel", () => {
      entry.stopped = true;
      this.wire.sendFrame(`file-abort ${id} cancelled by the sender`);
      card.clearActions();
      card.set("cancelled", "failed");
    });
    let hash;
    try {
      hash = await entry.hash;
    } catch (error) {
      entry.stopped = true;
      this.wire.sendFrame(`file-abort ${id} cannot read the file`);
      card.set(`not sent: cannot read the file (${error})`, "failed");
      return;
    }
    for (let offset = 0; offset < file.size && !entry.stopped; offset += CHUNK) {
      const bytes = new Uint8Array(await file.slice(offset, offset + CHUNK).arrayBuffer());
      // Wait while the socket holds a lot unsent: bounded by the transfer ending or the socket closing.
      while (this.wire.buffered > HIGH_WATER && !entry.stopped && this.wire.open) await sleep(10);
      if (entry.stopped || !this.wire.sendFrame(`file-data ${id}`, bytes)) break;
      card.fraction((offset + bytes.length - this.wire.buffered) / file.size);
    }
    if (entry.stopped) return;
    if (!this.wire.sendFrame(`file-end ${id} ${hash}`)) {
      card.set("connection lost", "failed");
      return;
    }
    cancel.remove();
    entry.sha = hash;
    card.set("sent; waiting for the receivers…", "sending");
    // Progress until the browser has handed every byte to the network, then file-done says who got it.
    for (let i = 0; i < 6000 && this.wire.buffered > 0 && !entry.stopped; i += 1) {
      card.fraction(1 - this.wire.buffered / Math.max(1, file.size));
      await sleep(50);
    }
    card.fraction(1);
  }

  // -- frames from the server ---------------------------------------------------------------------
  onFrame({ words, payload }) {
    const [kind, id] = words;
    const resume = this.resume;
    if (kind === "file-id") resume.ids.set(id, words[2]);
    else if (kind === "file-chunks") resume.chunksFrame(id, words, payload);
    else if (kind === "file-resend") resume.resend(id, words[2], payload);
    else if (kind === "file-gone") resume.gone(id, words.slice(2).join(" "));
    else if (resume.owns(id)) this.resumable(kind, id, words, payload);
    else if (kind === "file-offer") this.offered(id, Number(words[2]), words[3], words.slice(4).join(" "));
    else if (kind === "file-begin") this.begin(id, Number(words[2]), words[3], words.slice(4).join(" "));
    else if (kind === "file-data") this.data(id, payload);
    else if (kind === "file-end") this.end(id, words[2]);
    else if (kind === "file-done") this.done(id, words[2] || "");
    else if (kind === "file-abort") this.aborted(id, words.slice(2).join(" "));
  }

  // A frame of a session resume.js runs.
  resumable(kind, id, words, payload) {
    const resume = this.resume;
    if (kind === "file-begin") {
      const offer = this.incoming.get(id);
      this.incoming.delete(id);
      resume.begin(id, words[3], words.slice(4).join(" "), offer ? offer.card : null);
    } else if (kind === "file-data") resume.data(id, Number(words[2]), payload);
    else if (kind === "file-end") resume.end(id);
    else if (kind === "file-done") resume.done(resume.sessions.get(id), words[2] || "");
    else if (kind === "file-pause" || kind === "file-abort") resume.ended(id, kind, words.slice(2).join(" "));
    if (kind === "file-done") resume.sessions.delete(id);
  }

  offered(id, size, sender, rawName) {
    const name = safeName(rawName);
    const card = new Card(this.list, `${sender} offers ${name} (${formatSize(size)})`, "in");
    card.set("waiting for your answer", "offered");
    const entry = { name, size, sender, card, chunks: [], received: 0, began: false };
    this.incoming.set(id, entry);
    card.button("Accept", () => {
      this.wire.sendLines(`/accept ${id}`);
      card.clearActions();
      card.set("accepted; waiting for the data…", "accepted");
    });
    card.button("Decline", () => {
      this.wire.sendLines(`/decline ${id}`);
      card.clearActions();
      card.set("declined", "declined");
      this.incoming.delete(id);
    });
    this.announce(`${sender} offers the file ${name}, ${formatSize(size)}`);
  }

  begin(id, size, sender, rawName) {
    let entry = this.incoming.get(id);
    if (!entry) {  // no offer first: this connection takes files without asking
      const name = safeName(rawName);
      const card = new Card(this.list, `${sender} sends ${name} (${formatSize(size)})`, "in");
      entry = { name, size, sender, card, chunks: [], received: 0 };
      this.incoming.set(id, entry);
    }
    entry.began = true;
    entry.size = size;
    entry.card.set("receiving…", "receiving");
  }

  data(id, payload) {
    const entry = this.incoming.get(id);
    if (!entry || !entry.began) return;
    entry.received += payload.length;
    if (entry.received > entry.size) {
      this.fail(id, entry, `more data than the ${entry.size} bytes announced; discarded`);
      return;
    }
    entry.chunks.push(payload);
    entry.card.fraction(entry.received / Math.max(1, entry.size));
  }

  async end(id, expected) {
    const entry = this.incoming.get(id);
    if (!entry || !entry.began) return;
    this.incoming.delete(id);
    const blob = new Blob(entry.chunks, { type: OCTETS });
    entry.chunks = [];
    if (blob.size !== entry.size) {
      this.fail(id, entry, `got ${blob.size} of ${entry.size} bytes; discarded`);
      return;
    }
    entry.card.set("checking SHA-256…", "checking");
    const actual = await sha256Blob(blob);
    if (actual !== String(expected).toLowerCase()) {
      this.fail(id, entry, `SHA-256 mismatch (got ${actual.slice(0, 16)}…, expected ${String(expected).slice(0, 16)}…); discarded`);
      return;
    }
    entry.card.fraction(1);
    entry.card.set(`${formatSize(entry.size)}, SHA-256 ${actual.slice(0, 16)}… checked`, "done");
    entry.card.saveLink(entry.name, blob, actual);
    this.announce(`${entry.name} from ${entry.sender} is ready to save`);
  }

  done(id, nicks) {
    const entry = this.outgoing.get(id);
    if (!entry) return;
    this.outgoing.delete(id);
    entry.card.fraction(1);
    const who = nicks ? nicks.split(",").join(", ") : "nobody (everyone left)";
    entry.card.set(`sent to ${who}; SHA-256 ${String(entry.sha).slice(0, 16)}…`, "done");
    this.announce(`${entry.name} sent to ${who}`);
  }

  aborted(id, reason) {
    const out = this.outgoing.get(id);
    if (out) {
      out.stopped = true;
      this.outgoing.delete(id);
      out.card.clearActions();
      out.card.set(`stopped: ${reason}`, "failed");
    }
    const entry = this.incoming.get(id);
    if (entry) this.fail(id, entry, reason);
  }

  fail(id, entry, reason) {
    this.incoming.delete(id);
    entry.chunks = [];
    entry.card.clearActions();
    entry.card.set(`not received: ${reason}`, "failed");
    this.announce(`${entry.name}: ${reason}`);
  }

  // The connection was lost: every transfer of it is over (the server ends them too).
  lost() {
    for (const entry of this.waiting) entry.card.set("not sent: connection lost", "failed");
    this.waiting = [];
    for (const [id, entry] of this.outgoing) {
      entry.stopped = true;
      this.aborted(id, "connection lost");
    }
    for (const [id, entry] of this.incoming) this.fail(id, entry, "connection lost");
    this.resume.lost();
  }
}
