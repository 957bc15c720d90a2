// connect-medicare/button — registers <connect-medicare-button> when imported in a browser.
// This entry has a side effect by design (package.json "sideEffects" names it); under SSR it
// defines nothing and touches no browser global.
//
//   <connect-medicare-button broker="/cm" return-to="/claims"></connect-medicare-button>
//
// Attributes: broker (or set the `client` property to a ConnectMedicare), provider, method
// ("get" | "post"), return-to. Events (bubbling, composed): connect-medicare-connected,
// connect-medicare-disconnected, connect-medicare-error (detail: the ConnectMedicareError).
// Theme with CSS custom properties: --cm-button-background, --cm-button-color,
// --cm-button-border, --cm-button-radius, --cm-button-padding, --cm-button-font,
// --cm-focus-ring, --cm-text-color, --cm-attribution-color, --cm-attribution-size; or ::part()
// (root, button, disconnect, status, attribution).
import { ConnectMedicare } from './index.js';

const Base = globalThis.HTMLElement ?? class {};

const STYLE = `
:host { display: inline-block; font: var(--cm-button-font, 600 1rem/1.3 system-ui, sans-serif); color: var(--cm-text-color, inherit); }
:host([hidden]) { display: none; }
[part=root] { display: grid; gap: .4em; justify-items: start; }
button { font: inherit; cursor: pointer; border: var(--cm-button-border, 0); border-radius: var(--cm-button-radius, .4em);
  padding: var(--cm-button-padding, .6em 1.1em); background: var(--cm-button-background, #0b4778); color: var(--cm-button-color, #fff); }
button[part=disconnect] { background: transparent; color: inherit; border: 1px solid currentColor; font-weight: 400; }
button:focus-visible { outline: var(--cm-focus-ring, 3px solid #f9c642); outline-offset: 2px; }
button[aria-busy=true], button:disabled { cursor: progress; opacity: .7; }
[part=status]:empty { display: none; }
p { margin: 0; font-weight: 400; }
[part=attribution] { font-size: var(--cm-attribution-size, .75em); color: var(--cm-attribution-color, #5c5c5c); max-width: 36em; }
`;

/**
 * What the user is told after a disconnect, by what became of the app's access at the
 * provider (the broker's `revocations[].status`). Only `revoked` means the provider accepted
 * the request to end it.
 */
function revocationMessage(status, name) {
  switch (status) {
    case 'revoked':
      return `Disconnected from ${name}: ${name} accepted the request to stop sharing your data with this app.`;
    case 'pending':
      return `Disconnected from ${name} here. ${name} could not be reached to end this app's access; it will be asked again. If this app still appears in your ${name} account tomorrow, remove it there.`;
    case 'failed':
      return `Disconnected from ${name} here, but ${name} refused to end this app's access: you can end it in your ${name} account.`;
    case 'not_supported':
      return `Disconnected from ${name} here. ${name} does not let apps end their access: you can end it in your ${name} account.`;
    default:
      return `Disconnected from ${name} here.`;
  }
}

/** The Connect Medicare button: connect, connected state, disconnect, and CMS's attribution. */
export class ConnectMedicareButton extends Base {
  static observedAttributes = ['broker', 'provider'];

  #client;
  #creating;
  #els;

  /** The ConnectMedicare client; made from the `broker` attribute when not set. */
  get client() {
    return this.#client;
  }

  set client(client) {
    this.#client = client;
    this.#creating = undefined;
    if (this.isConnected) this.refresh();
  }

  connectedCallback() {
    if (!this.#els) this.#render();
    this.refresh();
  }

  attributeChangedCallback(name, before, after) {
    if (name === 'broker' && before !== after && this.#els) this.#creating = undefined;
    if (this.#els && this.isConnected) this.refresh();
  }

  /** Finishes a sign-in when the page is a callback, then reads the session and shows it. */
  async refresh() {
    // No client yet and no broker to make one from: wait for the `client` property.
    if (!this.#client && !this.hasAttribute('broker')) return;
    this.#busy(true, 'Checking your connection…');
    try {
      const client = await this.#ready();
      // Shares the app's own handleRedirect() when it calls it too: one completion. A failed
      // callback (replayed, from another tab, declined) does not hide the session the browser
      // may already have: the state shown is always the broker's.
      let redirectError;
      try {
        await client.handleRedirect();
      } catch (e) {
        redirectError = e;
      }
      const id = this.getAttribute('provider') ?? client.providers[0]?.id;
      const name = client.providers.find((p) => p.id === id)?.name ?? 'Medicare';
      const session = await client.session();
      const connection = session.connections.find((c) => c.provider === id);
      this.#show(connection?.status, name);
      if (connection?.status === 'connected') this.#emit('connect-medicare-connected', connection);
      if (redirectError) {
        if (connection?.status !== 'connected') this.#els.status.textContent = redirectError.message;
        this.#emit('connect-medicare-error', redirectError);
      }
    } catch (e) {
      if (e?.code === 'not_connected') this.#show(undefined, this.#name());
      else this.#fail(e);
    }
  }

  #name() {
    const id = this.getAttribute('provider') ?? this.#client?.providers[0]?.id;
    return this.#client?.providers.find((p) => p.id === id)?.name ?? 'Medicare';
  }

  #ready() {
    if (this.#client) return Promise.resolve(this.#client);
    this.#creating ??= ConnectMedicare.create({ broker: this.getAttribute('broker') ?? undefined }).then((c) => (this.#client = c));
    return this.#creating;
  }

  #render() {
    const root = this.attachShadow({ mode: 'open' });
    root.innerHTML = `<div part="root">
<button part="button" type="button"></button>
<button part="disconnect" type="button" hidden></button>
<p part="status" role="status" aria-live="polite"></p>
<p part="attribution">Uses the CMS Blue Button 2.0 API. This app is not affiliated with or endorsed by the Centers for Medicare &amp; Medicaid Services (CMS) or Medicare.gov.</p>
</div>`;
    // A constructed stylesheet, not a <style> element: pages with a strict CSP (no
    // 'unsafe-inline' styles) apply it too.
    if (root.adoptedStyleSheets && globalThis.CSSStyleSheet?.prototype.replaceSync) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(STYLE);
      root.adoptedStyleSheets = [sheet];
    } else {
      root.prepend(Object.assign(document.createElement('style'), { textContent: STYLE }));
    }
    const [button, disconnect] = root.querySelectorAll('button');
    this.#els = { button, disconnect, status: root.querySelector('[part=status]') };
    button.addEventListener('click', () => this.#connect());
    disconnect.addEventListener('click', () => this.#disconnect());
  }

  #show(status, name) {
    const { button, disconnect, status: line } = this.#els;
    this.#busy(false, '');
    const connected = status === 'connected';
    button.hidden = connected;
    disconnect.hidden = !connected;
    button.textContent = status === 'reconnect_required' ? `Reconnect ${name}` : `Connect ${name}`;
    disconnect.textContent = `Disconnect ${name}`;
    line.textContent = connected ? `Connected to ${name}.` : status === 'reconnect_required' ? `Your ${name} connection ended: connect again.` : '';
    this.toggleAttribute('connected', connected);
  }

  #busy(on, message) {
    const { button, disconnect, status } = this.#els;
    for (const b of [button, disconnect]) {
      b.disabled = on;
      b.setAttribute('aria-busy', String(on));
    }
    if (message) status.textContent = message;
  }

  async #connect() {
    this.#busy(true, 'Opening the sign-in page…');
    try {
      const client = await this.#ready();
      await client.connect({
        provider: this.getAttribute('provider') ?? undefined,
        method: this.getAttribute('method') ?? undefined,
        returnTo: this.getAttribute('return-to') ?? undefined,
      });
    } catch (e) {
      this.#fail(e);
    }
  }

  async #disconnect() {
    this.#busy(true, 'Disconnecting…');
    try {
      const client = await this.#ready();
      const result = await client.disconnect(this.getAttribute('provider') ?? undefined);
      this.#show(undefined, this.#name());
      const nameOf = (id) => client.providers.find((p) => p.id === id)?.name ?? id;
      const told = (result?.revocations ?? []).map((r) => revocationMessage(r.status, nameOf(r.provider)));
      this.#els.status.textContent = told.length ? told.join(' ') : `Disconnected from ${this.#name()}.`;
      this.#emit('connect-medicare-disconnected', result);
      this.#els.button.focus();
    } catch (e) {
      this.#fail(e);
    }
  }

  #fail(error) {
    this.#busy(false, '');
    this.#els.button.hidden = false;
    this.#els.button.textContent ||= `Connect ${this.#name()}`;
    this.#els.status.textContent = error?.message ?? 'Something went wrong.';
    this.#emit('connect-medicare-error', error);
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }
}

if (globalThis.customElements && !customElements.get('connect-medicare-button')) {
  customElements.define('connect-medicare-button', ConnectMedicareButton);
}
