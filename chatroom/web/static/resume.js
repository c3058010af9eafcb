// Resumable transfers of the page (docs/protocol.md "Resumable transfers", docs/web.md "Files"). With a
// server that took `/caps resume`, an upload is announced with its SHA-256 and the hash list of its 1 MiB
// chunks (`file-announce`), each `file-data ID INDEX` frame is one chunk, and the token from `file-id` is
// kept (store.js) so that the upload can resume: at once after a dropped connection or a server restart
// (the page still holds the File), after a reload with "Resume", which asks for the same file again and
// takes it only if its size and SHA-256 match. A download (`file-chunks` before `file-begin`) keeps every
// chunk that hashed right in IndexedDB; a dropped connection, a restart of either end or a reload leaves
// them there, every one is hashed again before the page says what it still needs (`file-resume TOKEN` +
// bitmap), and at the end the whole file's SHA-256 is checked before "Save" is offered.

import { Card, OCTETS } from "./cards.js";
import { formatSize, safeName } from "./names.js";
import { Sha256, hasWebCrypto, sha256Blob } from "./sha256.js";
import { openStore } from "./store.js";

export const CHUNK = 1024 * 1024;       // bytes per chunk (a frame each; the server takes 64 KiB to 4 MiB)
const MAX_CHUNK = 4 * 1024 * 1024;
const MAX_CHUNKS = 65536;
const HIGH_WATER = 2 * 1024 * 1024;     // stop queueing while the socket holds this much unsent
const RETRIES = 5;                      // asks in a row for chunks that did not come, before "Resume" is needed
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const chunkCount = (size, chunk) => Math.ceil(size / chunk);
export const span = (size, chunk, index) => [index * chunk, Math.min(chunk, size - index * chunk)];

// The chunk size for a file: 1 MiB, doubled while the file would have more than 65536 chunks (null past 256 GiB).
export function pickChunk(size) {
  let chunk = CHUNK;
  while (chunkCount(size, chunk) > MAX_CHUNKS) {
    if (chunk >= MAX_CHUNK) return null;
    chunk *= 2;
  }
  return chunk;
}

// The bitmap (BitTorrent's layout: chunk i is bit 0x80 >> i % 8 of byte i / 8) of indices among count chunks.
export function bitmap(indices, count) {
  const bits = new Uint8Array((count + 7) >> 3);
  for (const i of indices) bits[i >> 3] |= 0x80 >> (i & 7);
  return bits;
}

// The indices set in a bitmap of count chunks, or null when its length or a spare bit is wrong.
export function setBits(bits, count) {
  if (bits.length !== (count + 7) >> 3) return null;
  const found = [];
  for (let i = 0; i < bits.length * 8; i += 1) {
    if (bits[i >> 3] & (0x80 >> (i & 7))) {
      if (i >= count) return null;
      found.push(i);
    }
  }
  return found;
}

const fromHex = (text) => Uint8Array.from(text.match(/../g) || [], (pair) => parseInt(pair, 16));

// SHA-256 of some bytes (Web Crypto where the page is a secure context, else sha256.js).
export async function digest(bytes) {
  if (hasWebCrypto()) return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return fromHex(new Sha256().update(bytes).hex());
}

function matches(hash, hashes, index) {
  for (let k = 0; k < 32; k += 1) if (hash[k] !== hashes[index * 32 + k]) return false;
  return true;
}

// {sha, hashes}: the SHA-256 of a File and the hash list of its chunks.
export async function hashFile(file, chunk) {
  const count = chunkCount(file.size, chunk);
  const hashes = new Uint8Array(count * 32);
  for (let i = 0; i < count; i += 1) {
    const [offset, length] = span(file.size, chunk, i);
    hashes.set(await digest(new Uint8Array(await file.slice(offset, offset + length).arrayBuffer())), i * 32);
  }
  return { sha: await sha256Blob(file), hashes };
}

export class Resumes {
  // wire: the Wire; list: the <ul> of cards; announce(text): tell screen readers.
  constructor(wire, list, announce) {
    this.wire = wire;
    this.list = list;
    this.announce = announce;
    this.on = false;          // this connection's server took /caps resume
    this.settled = false;     // the page's name (and login) are settled on this connection
    this.presented = false;
    this.store = null;
    this.ids = new Map();     // transfer id -> token (file-id comes before OK sendfile)
    this.ups = new Map();     // token -> upload
    this.downs = new Map();   // token -> download
    this.sessions = new Map();  // transfer id -> {kind: "up"|"down", entry, id, plan, stopped}
    this.meta = new Map();    // transfer id -> file-chunks, until its file-begin
    this.ready = openStore().then((store) => {
      this.store = store;
      return this.restore();
    });
  }

  // -- the connection -------------------------------------------------------------------------------
  enable() {
    this.on = true;
    this.maybePresent();
  }

  settle() {
    this.settled = true;
    this.maybePresent();
  }

  // Every record this page can resume now is presented once per connection (uploads need their File).
  async maybePresent() {
    if (!this.on || !this.settled || this.presented) return;
    this.presented = true;
    await this.ready;
    for (const entry of this.downs.values()) this.present(entry, false);
    for (const entry of this.ups.values()) if (entry.file) this.present(entry, false);
  }

  lost() {
    this.on = this.settled = this.presented = false;
    for (const session of this.sessions.values()) {
      session.stopped = true;
      session.queue = (session.queue || Promise.resolve()).then(() => {  // after the chunks that came are kept
        const { entry } = session;
        if (entry && entry.token) this.paused(entry, "connection lost");
        else if (entry) this.failed(entry, "stopped: connection lost");
      });
    }
    this.sessions.clear();
    this.meta.clear();
  }

  // Records of an earlier page: each gets a card with Resume and Cancel.
  async restore() {
    for (const record of await this.store.records()) {
      const entry = { ...record, hashes: new Uint8Array(record.hashes), file: null, have: new Set(), tries: 0 };
      if (record.role === "up") {
        entry.have = null;  // the receivers know what they have
        entry.card = new Card(this.list, `${entry.name} (${formatSize(entry.size)}) to the room`, "out");
        this.ups.set(entry.token, entry);
        this.paused(entry, "interrupted; pick the file again to resume");
      } else {
        entry.card = new Card(this.list, `${entry.sender} sends ${entry.name} (${formatSize(entry.size)})`, "in");
        for (const index of await this.store.indices(entry.token)) entry.have.add(index);
        this.downs.set(entry.token, entry);
        this.paused(entry, "interrupted");
      }
    }
  }

  paused(entry, why) {
    const { card } = entry;
    const percent = entry.have ? ` at ${Math.floor((100 * this.bytes(entry)) / Math.max(1, entry.size))}%` : "";
    card.set(`paused${percent}: ${why}`, "paused");
    card.clearActions();
    card.button("Resume", () => this.resumeClicked(entry));
    card.button("Cancel", () => this.cancel(entry));
  }

  bytes(entry) {
    let total = 0;
    for (const index of entry.have) total += span(entry.size, entry.chunk, index)[1];
    return total;
  }

  // -- asking the server --------------------------------------------------------------------------------
  resumeClicked(entry) {
    entry.tries = 0;
    if (entry.role === "up" && !entry.file) {
      this.pick(entry);
      return;
    }
    if (!this.on) {
      entry.card.set("not connected: it resumes when the connection is back", "paused");
      return;
    }
    this.present(entry, false);
  }

  // The upload's file again, from the person: taken only if its size and SHA-256 are the offer's.
  pick(entry) {
    const input = document.createElement("input");
    input.type = "file";
    input.addEventListener("change", async () => {
      const file = input.files[0];
      if (!file) return;
      entry.card.set("checking that it is the same file…", "checking");
      const same = file.size === entry.size && (await sha256Blob(file)) === entry.sha256;
      if (!same) {
        this.paused(entry, `${safeName(file.name)} is not the file offered (its size or SHA-256 differs)`);
        return;
      }
      entry.file = file;
      if (this.on) this.present(entry, false);
      else this.paused(entry, "it resumes when the connection is back");
    });
    input.click();
  }

  async present(entry, auto) {
    if (auto && (entry.tries += 1) > RETRIES) {
      this.paused(entry, `asked ${RETRIES} times without progress`);
      return;
    }
    entry.card.clearActions();
    entry.card.button("Cancel", () => this.cancel(entry));
    if (entry.role === "up") {
      entry.card.set("asking the server to resume…", "paused");
      this.wire.sendFrame(`file-resume ${entry.token}`);
      return;
    }
    entry.card.set("checking what arrived…", "checking");
    let bad = 0;
    for (const index of [...entry.have].sort((a, b) => a - b)) {  // every stored chunk hashed again
      const blob = await this.store.chunk(entry.token, index);
      const bytes = blob ? new Uint8Array(await blob.arrayBuffer()) : null;
      if (!bytes || !matches(await digest(bytes), entry.hashes, index)) {
        entry.have.delete(index);
        await this.store.dropChunk(entry.token, index);
        bad += 1;
      }
    }
    const count = chunkCount(entry.size, entry.chunk);
    const missing = [];
    for (let i = 0; i < count; i += 1) if (!entry.have.has(i)) missing.push(i);
    if (!missing.length) {
      this.finish(entry);
      return;
    }
    const note = bad ? ` (${bad} stored chunks did not match and are fetched again)` : "";
    entry.card.set(`asking for the missing ${formatSize(entry.size - this.bytes(entry))}…${note}`, "paused");
    this.wire.sendFrame(`file-resume ${entry.token}`, bitmap(missing, count));
  }

  // A line: true when it answered one of ours (OK/ERROR resume or cancel).
  onLine(text) {
    const match = /^(OK|ERROR) (resume|cancel) ([0-9a-f]{32}):? ?(.*)$/.exec(text);
    if (!match) return false;
    const entry = this.ups.get(match[3]) || this.downs.get(match[3]);
    if (entry && match[2] === "resume") {
      if (match[1] === "OK") entry.card.set(match[4].replace(/^[^:]*: /, ""));
      else this.paused(entry, "the server does not know this transfer now (it may have finished, been cancelled or expired)");
    }
    return true;
  }

  // -- uploads --------------------------------------------------------------------------------------------
  // An offer of entry (files.js's: name, file, card) that can resume: hashed, then announced.
  async offer(entry) {
    const chunk = pickChunk(entry.file.size);
    entry.card.set("hashing…", "offering");
    try {
      const { sha, hashes } = await hashFile(entry.file, chunk);
      Object.assign(entry, { chunk, size: entry.file.size, sha256: sha, hashes });
    } catch (error) {
      entry.card.set(`not sent: cannot read the file (${error})`, "failed");
      return false;
    }
    entry.card.set("offering…", "offering");
    return this.wire.sendFrame(`file-announce ${entry.size} ${chunk} ${entry.sha256} ${entry.name}`, entry.hashes);
  }

  // OK sendfile ID for an announced entry: keep its record, send its chunks.
  async started(entry, id) {
    const token = this.ids.get(id);
    this.ids.delete(id);
    Object.assign(entry, { id, token: token || null, role: "up", have: null, tries: 0 });
    // Known at once: a file-abort or file-pause that comes while the record is stored finds its session (and
    // waits for the store, in session.queue) instead of being missed while every chunk goes out regardless.
    const session = { kind: "up", entry, id, plan: null, stopped: false };
    this.sessions.set(id, session);
    if (token) {
      this.ups.set(token, entry);
      session.queue = this.ready.then(() => this.store.putRecord({ token, role: "up", name: entry.name, sender: "",
        size: entry.size, chunk: entry.chunk, sha256: entry.sha256, hashes: entry.hashes }));
      await session.queue;
    }
    if (!session.stopped) this.pump(session);
  }

  async pump(session) {
    const { entry, id, plan } = session;
    const { card } = entry;
    this.sessions.set(id, session);
    card.set(plan ? "resuming…" : "sending…", "sending");
    card.clearActions();
    const cancel = card.button("Cancel", () => this.cancel(entry));
    const indices = plan || [...Array(chunkCount(entry.size, entry.chunk)).keys()];
    const total = indices.reduce((sum, i) => sum + span(entry.size, entry.chunk, i)[1], 0);
    let sent = 0;
    for (const index of indices) {
      const [offset, length] = span(entry.size, entry.chunk, index);
      const bytes = new Uint8Array(await entry.file.slice(offset, offset + length).arrayBuffer());
      if (plan && !matches(await digest(bytes), entry.hashes, index)) {
        this.giveUp(entry, "the file changed since it was offered");
        return;
      }
      while (this.wire.buffered > HIGH_WATER && !session.stopped && this.wire.open) await sleep(10);
      if (session.stopped || !this.wire.sendFrame(`file-data ${id} ${index}`, bytes)) return;
      sent += length;
      card.fraction((sent - this.wire.buffered) / Math.max(1, total));
    }
    if (session.stopped || !this.wire.sendFrame(`file-end ${id} ${entry.sha256}`)) return;
    cancel.remove();
    session.bytes = total;
    card.set("sent; waiting for the receivers…", "sending");
    for (let i = 0; i < 6000 && this.wire.buffered > 0 && !session.stopped; i += 1) await sleep(50);
    card.fraction(1);
  }

  resend(id, token, bits) {
    const entry = this.ups.get(token);
    const plan = entry && setBits(bits, chunkCount(entry.size, entry.chunk));
    if (!entry || !entry.file || !plan) return;
    this.pump({ kind: "up", entry, id, plan, stopped: false });
  }

  done(session, nicks) {
    const { entry, plan } = session;
    const who = nicks ? nicks.split(",").join(", ") : "nobody (everyone left)";
    entry.card.fraction(1);
    entry.card.clearActions();
    if (plan) {
      entry.card.set(`resumed to ${who}: sent the missing ${formatSize(session.bytes || 0)} of ${formatSize(entry.size)}`, "done");
    } else {
      entry.card.set(`sent to ${who}; SHA-256 ${String(entry.sha256).slice(0, 16)}…`, "done");
    }
    this.announce(`${entry.name} sent to ${who}`);
  }

  // -- downloads --------------------------------------------------------------------------------------------
  chunksFrame(id, words, payload) {  // file-chunks ID TOKEN SIZE CHUNK SHA256 (+ the hash list)
    const [token, size, chunk, sha] = words.slice(2);
    if (!/^[0-9a-f]{32}$/.test(token) || !/^[0-9a-f]{64}$/.test(sha || "")) return;
    this.meta.set(id, { token, size: Number(size), chunk: Number(chunk), sha256: sha, hashes: payload.slice() });
  }

  owns(id) {
    return this.meta.has(id) || this.sessions.has(id);
  }

  // file-begin of a session announced by file-chunks; its frames wait in session.queue until it is set up.
  begin(id, sender, rawName, card) {
    const meta = this.meta.get(id);
    this.meta.delete(id);
    const session = { kind: "down", entry: null, id, stopped: false };
    this.sessions.set(id, session);
    session.queue = this.setUp(session, meta, sender, rawName, card);
  }

  async setUp(session, meta, sender, rawName, card) {
    await this.ready;
    let entry = this.downs.get(meta.token);
    if (!entry) {
      if (meta.hashes.length !== chunkCount(meta.size, meta.chunk) * 32) {  // a resume of a record this page lost
        this.sessions.delete(session.id);
        this.wire.sendFrame(`file-cancel ${meta.token} the receiver lost its partial file`);
        return;
      }
      const name = safeName(rawName);
      entry = { ...meta, role: "down", name, sender, have: new Set(), tries: 0,
        card: card || new Card(this.list, `${sender} sends ${name} (${formatSize(meta.size)})`, "in") };
      this.downs.set(entry.token, entry);
      await this.store.putRecord({ token: entry.token, role: "down", name, sender, size: entry.size,
        chunk: entry.chunk, sha256: entry.sha256, hashes: entry.hashes });
    }
    entry.card.clearActions();
    entry.card.button("Cancel", () => this.cancel(entry));
    entry.card.set("receiving…", "receiving");
    session.entry = entry;
  }

  data(id, index, payload) {
    const session = this.sessions.get(id);
    if (!session || session.kind !== "down") return;
    session.queue = session.queue.then(() => session.entry && this.keep(session.entry, index, payload));
  }

  async keep(entry, index, payload) {
    if (entry.have.has(index) || !this.downs.has(entry.token)) return;
    if (!matches(await digest(payload), entry.hashes, index)) {
      entry.card.set(`chunk ${index} did not match its SHA-256: it is asked for again`);
      return;
    }
    await this.store.putChunk(entry.token, index, new Blob([payload]));
    entry.have.add(index);
    entry.tries = 0;
    entry.card.fraction(this.bytes(entry) / Math.max(1, entry.size));
  }

  end(id) {
    const session = this.sessions.get(id);
    if (!session) return;
    this.sessions.delete(id);
    session.queue = session.queue.then(() => {
      const { entry } = session;
      if (!entry || !this.downs.has(entry.token)) return undefined;
      if (entry.have.size === chunkCount(entry.size, entry.chunk)) return this.finish(entry);
      return this.present(entry, true);
    });
  }

  async finish(entry) {
    entry.card.set("checking SHA-256…", "checking");
    const parts = [];
    for (let i = 0; i < chunkCount(entry.size, entry.chunk); i += 1) parts.push(await this.store.chunk(entry.token, i));
    const blob = new Blob(parts, { type: OCTETS });
    const actual = await sha256Blob(blob);
    this.downs.delete(entry.token);
    if (blob.size !== entry.size || actual !== entry.sha256) {
      this.wire.sendFrame(`file-cancel ${entry.token} sha256 mismatch`);
      await this.store.drop(entry.token);
      this.failed(entry, `SHA-256 mismatch (got ${actual.slice(0, 16)}…, expected ${entry.sha256.slice(0, 16)}…); discarded`);
      return;
    }
    await this.store.drop(entry.token);  // the Blob keeps its data alive until the page lets go of it
    this.wire.sendFrame(`file-received ${entry.token}`);
    entry.card.fraction(1);
    entry.card.clearActions();
    entry.card.set(`${formatSize(entry.size)}, SHA-256 ${actual.slice(0, 16)}… checked`, "done");
    entry.card.saveLink(entry.name, blob, actual);
    this.announce(`${entry.name} from ${entry.sender} is ready to save`);
  }

  // -- endings ---------------------------------------------------------------------------------------------
  // file-pause or file-abort ID REASON of one of our sessions.
  ended(id, kind, reason) {
    const session = this.sessions.get(id);
    this.sessions.delete(id);
    session.stopped = true;
    session.queue = (session.queue || Promise.resolve()).then(() => {
      const { entry } = session;
      if (!entry) return;
      if (kind === "file-abort") {  // the offer is over for good: neither side keeps its record
        this.forget(entry, entry.role === "down" ? `not received: ${reason}` : `stopped: ${reason}`);
        return;
      }
      const who = entry.role === "down" ? `${entry.sender} is` : "the receivers are";
      this.paused(entry, `${reason} (it resumes when ${who} back)`);
      if (entry.role === "down" && this.on) this.present(entry, true);
    });
  }

  gone(token, reason) {
    const entry = this.ups.get(token) || this.downs.get(token);
    if (!entry) return;
    if (entry.role === "up" && reason === "every receiver has it") {
      this.ups.delete(token);
      this.store.drop(token);
      entry.card.clearActions();
      return;
    }
    this.forget(entry, `ended: ${reason}`);
  }

  cancel(entry) {
    const meta = entry.token ? `file-cancel ${entry.token}` : `file-abort ${entry.id} cancelled by the sender`;
    if (!this.wire.sendFrame(meta)) {
      entry.card.set("not connected: cancel it once the connection is back");
      return;
    }
    for (const session of this.sessions.values()) if (session.entry === entry) session.stopped = true;
    this.forget(entry, "cancelled");
  }

  giveUp(entry, why) {
    this.wire.sendFrame(`file-cancel ${entry.token} ${why}`);
    this.forget(entry, `not sent: ${why}`);
  }

  forget(entry, status) {
    (entry.role === "up" ? this.ups : this.downs).delete(entry.token);
    if (this.store) this.store.drop(entry.token);
    this.failed(entry, status);
  }

  failed(entry, status) {
    entry.card.clearActions();
    entry.card.set(status, status === "cancelled" ? "cancelled" : "failed");
    this.announce(`${entry.name}: ${status}`);
  }
}
