// The page's WebSocket (docs/protocol.md "WebSocket and JSON events"): text lines up, one JSON
// event per text message down, file frames as binary messages ("META\nPAYLOAD") both ways.
// Reconnects by itself with exponential backoff (0.5 s doubling to 15 s, +-25 % jitter) until
// close() is called or the person quits. Lines go out at the pace of the server's flood control (the
// token bucket its hello gives: docs/protocol.md "Budgets and limits"), the rest queued, so a long paste
// is slowed instead of getting the connection dropped for flooding.

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const NEWLINE = 0x0a;
const MAX_MESSAGE = 60 * 1024; // bytes of lines per WebSocket message (the server takes 64 KiB)
const SPARE = 2;               // tokens the bucket keeps back: the upgrade request paid one

// "file-data 7", Uint8Array -> one binary message: meta, "\n", payload.
export function encodeFrame(meta, payload = new Uint8Array(0)) {
  const head = encoder.encode(meta + "\n");
  const message = new Uint8Array(head.length + payload.length);
  message.set(head, 0);
  message.set(payload, head.length);
  return message;
}

// A binary message -> {meta, words, payload} (payload a view, not a copy).
export function decodeFrame(buffer) {
  const bytes = new Uint8Array(buffer);
  let end = bytes.indexOf(NEWLINE);
  if (end < 0) end = bytes.length;
  const meta = decoder.decode(bytes.subarray(0, end));
  return { meta, words: meta.split(" "), payload: bytes.subarray(end + 1) };
}

export class Wire {
  // handlers: {open(), event(obj), frame({meta, words, payload}), closed({code, reason, retryIn}),
  // queued(lines waiting)}
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.socket = null;
    this.attempt = 0;
    this.stopped = false;
    this.timer = null;
    this.soon = false;
    this.queue = [];       // lines waiting for a token: {line, sent(), lost()}
    this.bucket = null;    // {rate, burst, tokens, stamp} of this connection; null: no flood control
    this.pumpTimer = null;
    this.deadline = null;  // the timer of an answer expected (expectAnswer)
  }

  // Lines waiting to be sent (the composer shows how many).
  get waiting() {
    return this.queue.length;
  }

  get open() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  // Bytes queued by the browser and not yet handed to the network (for file backpressure).
  get buffered() {
    return this.socket ? this.socket.bufferedAmount : 0;
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.stopped) return;
    const socket = new WebSocket(this.url);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.handlers.open();
    });
    socket.addEventListener("message", (message) => {
      if (socket !== this.socket) return;
      clearTimeout(this.deadline);  // anything from the server proves the connection alive
      this.deadline = null;
      if (typeof message.data === "string") {
        let event;
        try {
          event = JSON.parse(message.data);
        } catch {
          return;  // not ours to guess at
        }
        if (event && typeof event.type === "string") this.handlers.event(event);
      } else {
        this.handlers.frame(decodeFrame(message.data));
      }
    });
    socket.addEventListener("close", (close) => this.lost(socket, close.code, close.reason));
  }

  // socket is gone (closed, or abandoned as silent): queued lines are not sent; try again after the backoff.
  lost(socket, code, reason) {
    if (socket !== this.socket) return;
    this.socket = null;
    clearTimeout(this.deadline);
    this.deadline = null;
    this.dropQueue();
    let retryIn = null;
    if (!this.stopped) {
      const base = Math.min(15000, 500 * 2 ** this.attempt);
      retryIn = this.soon ? 0 : Math.round(base * (0.75 + Math.random() * 0.5));
      this.soon = false;
      this.attempt = Math.min(this.attempt + 1, 10);
      this.timer = setTimeout(() => this.connect(), retryIn);
    }
    this.handlers.closed({ code, reason, retryIn });
  }

  // The server must answer within ms (a line that gets a reply was just sent), else the connection is taken
  // for dead and closed: a laptop that slept, a network that dropped, a server that hung leave a socket that
  // looks open and carries nothing, and the browser may not notice for many minutes.
  expectAnswer(ms) {
    if (!this.open || this.deadline) return;
    const socket = this.socket;
    this.deadline = setTimeout(() => {
      this.deadline = null;
      if (socket !== this.socket) return;
      socket.close(4000, "no answer");  // its own close event comes later, or never: not waited for
      this.lost(socket, 4000, "no answer from the server");
    }, ms);
  }

  // The server said hello: the connection is good, so the next loss starts the backoff afresh. flood: the
  // hello's {rate, burst} (lines per second, 0: no flood control; lines at once); absent from older servers.
  established(flood) {
    this.attempt = 0;
    const rate = flood ? Number(flood.rate) : 0;
    this.bucket = rate > 0 ? { rate, burst: Math.max(1, Number(flood.burst) - SPARE), stamp: performance.now() } : null;
    if (this.bucket) this.bucket.tokens = this.bucket.burst;
  }

  // Try again now (the "Reconnect now" button, the browser coming back online).
  retryNow() {
    if (this.stopped) return;
    if (this.socket === null) this.connect();
    else if (this.socket.readyState === WebSocket.CONNECTING) this.soon = true;  // if this try fails, again at once
  }

  // Lines as typed ("\n" between lines): queued in order, sent as the bucket allows (several lines to a
  // message, under MAX_MESSAGE bytes). false when not connected (nothing queued). sent(): the last of them
  // went out; lost(): the connection was lost first.
  sendLines(text, { sent, lost } = {}) {
    if (!this.open) return false;
    const lines = String(text).split("\n");
    lines.forEach((line, index) => this.queue.push(index === lines.length - 1 ? { line, sent, lost } : { line }));
    this.pump();
    return true;
  }

  pump() {
    clearTimeout(this.pumpTimer);
    this.pumpTimer = null;
    const bucket = this.bucket;
    if (bucket) {
      const now = performance.now();
      bucket.tokens = Math.min(bucket.burst, bucket.tokens + ((now - bucket.stamp) / 1000) * bucket.rate);
      bucket.stamp = now;
    }
    while (this.queue.length && this.open && (!bucket || bucket.tokens >= 1)) {
      const batch = [];
      let size = 0;
      while (this.queue.length && (!bucket || bucket.tokens >= 1)) {
        const bytes = encoder.encode(this.queue[0].line).length + 1;
        if (batch.length && size + bytes > MAX_MESSAGE) break;
        batch.push(this.queue.shift());
        size += bytes;
        if (bucket) bucket.tokens -= 1;
      }
      this.socket.send(batch.map((item) => item.line).join("\n"));
      for (const item of batch) if (item.sent) item.sent();
    }
    if (this.queue.length && this.open && bucket) {
      this.pumpTimer = setTimeout(() => this.pump(), Math.max(5, ((1 - bucket.tokens) / bucket.rate) * 1000));
    }
    this.handlers.queued(this.queue.length);
  }

  // The connection is gone: lines still queued are not sent.
  dropQueue() {
    clearTimeout(this.pumpTimer);
    const lost = this.queue.splice(0);
    for (const item of lost) if (item.lost) item.lost();
    if (lost.length) this.handlers.queued(0);
  }

  sendFrame(meta, payload) {
    if (!this.open) return false;
    this.socket.send(encodeFrame(meta, payload));
    return true;
  }

  // Stop for good (after /quit): no reconnecting.
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
