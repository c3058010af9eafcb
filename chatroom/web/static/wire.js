// The page's WebSocket (docs/protocol.md "WebSocket and JSON events"): text lines up, one JSON
// event per text message down, file frames as binary messages ("META\nPAYLOAD") both ways.
// Reconnects by itself with exponential backoff (0.5 s doubling to 15 s, +-25 % jitter) until
// close() is called or the person quits.

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const NEWLINE = 0x0a;

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
  // handlers: {open(), event(obj), frame({meta, words, payload}), closed({code, reason, retryIn})}
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.socket = null;
    this.attempt = 0;
    this.stopped = false;
    this.timer = null;
    this.soon = false;
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
    socket.addEventListener("close", (close) => {
      if (socket !== this.socket) return;
      this.socket = null;
      let retryIn = null;
      if (!this.stopped) {
        const base = Math.min(15000, 500 * 2 ** this.attempt);
        retryIn = this.soon ? 0 : Math.round(base * (0.75 + Math.random() * 0.5));
        this.soon = false;
        this.attempt = Math.min(this.attempt + 1, 10);
        this.timer = setTimeout(() => this.connect(), retryIn);
      }
      this.handlers.closed({ code: close.code, reason: close.reason, retryIn });
    });
  }

  // The server said hello: the connection is good, so the next loss starts the backoff afresh.
  established() {
    this.attempt = 0;
  }

  // Try again now (the "Reconnect now" button, the browser coming back online).
  retryNow() {
    if (this.stopped) return;
    if (this.socket === null) this.connect();
    else if (this.socket.readyState === WebSocket.CONNECTING) this.soon = true;  // if this try fails, again at once
  }

  // Lines as typed (several separated by "\n" go in one message; the server splits them).
  sendLines(text) {
    if (!this.open) return false;
    this.socket.send(text);
    return true;
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
