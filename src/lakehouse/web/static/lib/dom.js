// Building the page: elements from tag, properties and children. Every value goes in as
// text (textContent, attributes), never as markup.

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Element.append with the helper's rules: null, undefined and false add nothing.
export function put(el, ...children) {
  return append(el, children);
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

export function link(href, text, props = {}) {
  return h("a", { href, ...props }, text);
}

export function spinner(text = "Loading…") {
  return h("p", { class: "muted loading", "aria-busy": "true" }, text);
}

export function fact(label, value) {
  return h("div", {}, h("dt", {}, label), h("dd", {}, value));
}
