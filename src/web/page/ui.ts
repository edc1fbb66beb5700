/** Small DOM helpers shared by the picker and the terminal view. */
export function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`page: no #${id}`);
  return el;
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

/** A one-line message in place of the page's content (the same text an SSH user would read). */
export function fail(message: string): void {
  const main = $('main');
  main.replaceChildren(el('p', { className: 'error', id: 'error' }, message));
}

let noticeTimer: number | undefined;
export function notice(message: string): void {
  const box = $('notice');
  box.textContent = message;
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = window.setTimeout(() => (box.hidden = true), 15_000);
}
