// Small pure helpers of the page: safe file names, nick colours, sizes and times.
// No DOM, no network: tests/test_browser_units.py runs them in Chromium beside their Python twins.

// Invisible characters removed from file names: the ranges of chatroom/wire/textsafety.py INVISIBLE.
const INVISIBLE = /[\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\u3164\uFEFF\uFFA0\uFFF9-\uFFFB\u{1D173}-\u{1D17A}\u{E0000}-\u{E007F}]+/gu;
// C0/C1 controls, DEL, characters Windows forbids, lone surrogates (as chatroom/wire/filenames.py).
const BAD_CHARS = /[\x00-\x1f\x7f-\x9f<>:"|?*]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?$/i;
export const MAX_NAME_BYTES = 200;
export const FALLBACK = "file";

const encoder = new TextEncoder();
const byteLength = (text) => encoder.encode(text).length;
const stripEnds = (text, chars) => {
  let start = 0;
  let end = text.length;
  while (start < end && chars.includes(text[start])) start += 1;
  while (end > start && chars.includes(text[end - 1])) end -= 1;
  return text.slice(start, end);
};
const stripRight = (text, chars) => {
  let end = text.length;
  while (end > 0 && chars.includes(text[end - 1])) end -= 1;
  return text.slice(0, end);
};

// Cut name to at most limit UTF-8 bytes, keeping a short extension (filenames.py _truncate).
function truncate(name, limit) {
  if (byteLength(name) <= limit) return name;
  const dot = name.lastIndexOf(".");
  let stem = dot > 0 ? name.slice(0, dot) : name;
  let ext = dot > 0 ? name.slice(dot) : "";
  if (!ext || byteLength(ext) > 17) {
    stem = name;
    ext = "";
  }
  const room = limit - byteLength(ext);
  let cut = "";
  for (const ch of stem) {  // whole code points only
    if (byteLength(cut + ch) > room) break;
    cut += ch;
  }
  return stripRight(cut, " .") + ext;
}

// A safe base name for an untrusted file name: the rules of chatroom/wire/filenames.py safe_name.
export function safeName(raw) {
  let text = String(raw).replace(INVISIBLE, "").replace(/[\u2028\u2029]/g, " ").normalize("NFC");
  text = stripRight(text.replace(/\\/g, "/"), "/");
  text = text.slice(text.lastIndexOf("/") + 1);
  text = text.replace(BAD_CHARS, "_");
  text = stripEnds(text, " .");
  if (RESERVED.test(text)) text = "_" + text;
  text = stripRight(truncate(text, MAX_NAME_BYTES), " .");
  return text || FALLBACK;
}

// A stable colour per nick (case-insensitive, as nicks are): a hue from a string hash, with
// lightness chosen for contrast on the page's light and dark backgrounds (see style.css).
export function nickHue(nick) {
  let hash = 2166136261;  // FNV-1a, 32 bits
  for (const ch of String(nick).toLowerCase()) {
    hash ^= ch.codePointAt(0);
    hash = Math.imul(hash, 16777619) >>> 0;
  }
  return hash % 360;
}

// 2097152 -> "2.0 MiB"
export function formatSize(bytes) {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

// An ISO time -> "HH:MM" today, "YYYY-MM-DD HH:MM" otherwise (local time, as the terminal client).
export function formatTime(iso, now = new Date()) {
  const when = iso ? new Date(iso) : now;
  if (Number.isNaN(when.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  const hm = `${pad(when.getHours())}:${pad(when.getMinutes())}`;
  if (when.toDateString() === now.toDateString()) return hm;
  return `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())} ${hm}`;
}

// Does text mention nick as a word (case-insensitive)? Nicks are ASCII letters, digits, _ - .
export function mentions(text, nick) {
  if (!nick) return false;
  const escaped = nick.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
  return new RegExp(`(^|[^A-Za-z0-9_.-])${escaped}($|[^A-Za-z0-9_-])`, "i").test(text);
}
