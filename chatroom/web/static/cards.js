// One transfer's card in the #transfers list (files.js, resume.js): title, progress bar, status, buttons.
// Every text goes in with textContent.

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// The type of every received file's Blob: whatever it holds (a web page, an SVG), a browser opening its
// blob: URL (a middle click, "open in new tab") saves it instead of rendering it on the chat's origin.
export const OCTETS = "application/octet-stream";

// States after which nothing more happens to a transfer: its card can be dismissed.
const FINAL = new Set(["done", "failed", "declined", "cancelled"]);

export class Card {
  constructor(list, title, direction) {
    this.list = list;
    this.item = el("li", `transfer ${direction}`);
    this.title = el("p", "transfer-title", title);
    this.progress = el("progress");
    this.progress.max = 1;
    this.progress.value = 0;
    this.progress.setAttribute("aria-label", title);
    this.status = el("p", "transfer-status");
    this.actions = el("div", "transfer-actions");
    this.dismiss = el("button", "dismiss", "Dismiss");
    this.dismiss.type = "button";
    this.dismiss.hidden = true;
    this.dismiss.setAttribute("aria-label", `Dismiss: ${title}`);
    this.dismiss.addEventListener("click", () => this.remove());
    this.item.append(this.dismiss, this.title, this.progress, this.status, this.actions);
    list.append(this.item);
    list.hidden = false;
  }

  set(status, state) {
    this.status.textContent = status;
    if (state) this.item.dataset.state = state;
    this.dismiss.hidden = !FINAL.has(this.item.dataset.state);
  }

  // Take the card away (Dismiss), letting go of the bytes a Save link held.
  remove() {
    for (const link of this.item.querySelectorAll("a.save")) {
      if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
    }
    this.item.remove();
    this.list.hidden = this.list.childElementCount === 0;
  }

  fraction(value) {
    this.progress.value = Math.max(0, Math.min(1, value));
  }

  button(label, onClick) {
    const button = el("button", "", label);
    button.type = "button";
    button.addEventListener("click", onClick);
    this.actions.append(button);
    return button;
  }

  // The "Save NAME" link of a received and checked file (blob: its bytes, of type OCTETS), its SHA-256 kept.
  saveLink(name, blob, sha256) {
    const link = el("a", "save", `Save ${name}`);
    link.href = URL.createObjectURL(blob);
    link.download = name;
    link.dataset.sha256 = sha256;
    this.actions.append(link);
    return link;
  }

  clearActions() {
    this.actions.replaceChildren();
  }
}
