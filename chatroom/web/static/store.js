// What the page keeps of its resumable transfers (docs/protocol.md "Resumable transfers", docs/web.md):
// IndexedDB database "chatroom-transfers", which lasts across reloads in every context (plain http to a LAN
// address too, where the page has no crypto.subtle), with two object stores:
//   records: token -> {token, role: "up"|"down", name, sender, size, chunk, sha256, hashes (Uint8Array)}
//   chunks:  [token, index] -> Blob of one verified chunk of a download.
// A download's chunk is put only after it hashed to its entry in the offer's hash list, and in a transaction
// of its own: the chunks store is the sidecar of verified chunks, written with the data, atomically. Before
// a resume every stored chunk is read back and hashed again (resume.js). Where IndexedDB cannot be opened,
// MemoryStore keeps the same in memory: transfers then resume after a dropped connection, not a reload.

const DB = "chatroom-transfers";

const done = (request) => new Promise((resolve, reject) => {
  request.onsuccess = () => resolve(request.result);
  request.onerror = () => reject(request.error);
});

const finished = (tx) => new Promise((resolve, reject) => {
  tx.oncomplete = () => resolve();
  tx.onerror = () => reject(tx.error);
  tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
});

class IdbStore {
  constructor(db) {
    this.db = db;
    this.lasting = true;  // survives a reload
  }

  async records() {
    return done(this.db.transaction("records").objectStore("records").getAll());
  }

  async putRecord(record) {
    const tx = this.db.transaction("records", "readwrite");
    tx.objectStore("records").put(record);
    return finished(tx);
  }

  async putChunk(token, index, blob) {
    const tx = this.db.transaction("chunks", "readwrite");
    tx.objectStore("chunks").put(blob, [token, index]);
    return finished(tx);
  }

  async chunk(token, index) {
    return done(this.db.transaction("chunks").objectStore("chunks").get([token, index]));
  }

  async dropChunk(token, index) {
    const tx = this.db.transaction("chunks", "readwrite");
    tx.objectStore("chunks").delete([token, index]);
    return finished(tx);
  }

  // The indices of the chunks stored for token, ascending.
  async indices(token) {
    const range = IDBKeyRange.bound([token, 0], [token, Number.MAX_SAFE_INTEGER]);
    const keys = await done(this.db.transaction("chunks").objectStore("chunks").getAllKeys(range));
    return keys.map((key) => key[1]);
  }

  // Forget token: its record and every chunk of it.
  async drop(token) {
    const tx = this.db.transaction(["records", "chunks"], "readwrite");
    tx.objectStore("records").delete(token);
    tx.objectStore("chunks").delete(IDBKeyRange.bound([token, 0], [token, Number.MAX_SAFE_INTEGER]));
    return finished(tx);
  }
}

export class MemoryStore {
  constructor() {
    this.lasting = false;
    this.recordMap = new Map();
    this.chunkMap = new Map();  // token -> Map(index -> Blob)
  }

  async records() { return [...this.recordMap.values()]; }

  async putRecord(record) { this.recordMap.set(record.token, record); }

  async putChunk(token, index, blob) {
    if (!this.chunkMap.has(token)) this.chunkMap.set(token, new Map());
    this.chunkMap.get(token).set(index, blob);
  }

  async chunk(token, index) { return (this.chunkMap.get(token) || new Map()).get(index); }

  async dropChunk(token, index) { (this.chunkMap.get(token) || new Map()).delete(index); }

  async indices(token) { return [...(this.chunkMap.get(token) || new Map()).keys()].sort((a, b) => a - b); }

  async drop(token) {
    this.recordMap.delete(token);
    this.chunkMap.delete(token);
  }
}

// The page's store: IndexedDB, else memory.
export async function openStore() {
  try {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => {
      request.result.createObjectStore("records", { keyPath: "token" });
      request.result.createObjectStore("chunks");
    };
    return new IdbStore(await done(request));
  } catch {
    return new MemoryStore();
  }
}
