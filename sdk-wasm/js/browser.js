// The few browser calls the wasm module makes that are not plain function calls. Nothing
// here runs at import: every global is read when a function is called (safe under SSR).

/** `target[key]` when `target` is an object (not null), else undefined; so is a read that throws. */
export function field(target, key) {
  try {
    return typeof target === 'object' && target !== null ? target[key] : undefined;
  } catch {
    return undefined;
  }
}

/** The address bar, or undefined outside a browser page. */
export function currentUrl() {
  return globalThis.location?.href;
}

/** Rewrites the address bar without a navigation, keeping the router's history state. */
export function replaceUrl(url) {
  history.replaceState(history.state, '', url);
}

/** A GET navigation. */
export function navigate(url) {
  location.assign(url);
}

/** Builds a hidden form and submits it: the authorize request as a POST. */
export function submitForm(action, fields) {
  const form = document.createElement('form');
  form.method = 'post';
  form.action = action;
  form.hidden = true;
  for (const [name, value] of fields) {
    const input = document.createElement('input');
    input.type = 'hidden';
    input.name = name;
    input.value = value;
    form.append(input);
  }
  document.body.append(form);
  form.submit();
}
