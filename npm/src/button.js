// connect-medicare/button — registers <connect-medicare-button> when imported in a browser.
// This entry has a side effect by design (package.json "sideEffects" names it); under SSR it
// defines nothing and touches no browser global.
//
//   <connect-medicare-button broker="/cm" return-to="/claims"></connect-medicare-button>
//
// Attributes: broker (or set the `client` property to a ConnectMedicare), provider, method
// ("get" | "post"), return-to, lang. Events (bubbling, composed): connect-medicare-connected,
// connect-medicare-disconnected, connect-medicare-error (detail: the ConnectMedicareError).
// Language: English or Spanish, from the element's own `lang` or its nearest ancestor's (the
// document's); the `strings` property overrides any text. CMS's attribution shows only for a
// Blue Button provider. While busy the button stays focusable (`aria-disabled`, `aria-busy`)
// and the live region says what is happening.
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
button[aria-disabled=true] { cursor: progress; opacity: .7; }
p { margin: 0; font-weight: 400; }
[part=attribution] { font-size: var(--cm-attribution-size, .75em); color: var(--cm-attribution-color, #5c5c5c); max-width: 36em; }
`;

/**
 * The button's words, by language. What the user is told after a disconnect depends on what
 * became of the app's access at the provider (the broker's `revocations[].status`): only
 * `revoked` means the provider accepted the request to end it.
 */
export const STRINGS = {
  en: {
    connect: (n) => `Connect ${n}`,
    reconnect: (n) => `Reconnect ${n}`,
    disconnect: (n) => `Disconnect ${n}`,
    connected: (n) => `Connected to ${n}.`,
    ended: (n) => `Your ${n} connection ended: connect again.`,
    opening: 'Opening the sign-in page…',
    disconnecting: 'Disconnecting…',
    revoked: (n) => `Disconnected from ${n}: ${n} accepted the request to stop sharing your data with this app.`,
    pending: (n) => `Disconnected from ${n} here. ${n} could not be reached to end this app's access; it will be asked again. If this app still appears in your ${n} account tomorrow, remove it there.`,
    failed: (n) => `Disconnected from ${n} here, but ${n} refused to end this app's access: you can end it in your ${n} account.`,
    not_supported: (n) => `Disconnected from ${n} here. ${n} does not let apps end their access: you can end it in your ${n} account.`,
    disconnected: (n) => `Disconnected from ${n} here.`,
    error: (e) => e?.message ?? 'Something went wrong.',
    attribution: 'Uses the CMS Blue Button 2.0 API. This app is not affiliated with or endorsed by the Centers for Medicare & Medicaid Services (CMS) or Medicare.gov.',
  },
  es: {
    connect: (n) => `Conectar ${n}`,
    reconnect: (n) => `Volver a conectar ${n}`,
    disconnect: (n) => `Desconectar ${n}`,
    connected: (n) => `Conectado a ${n}.`,
    ended: (n) => `Su conexión con ${n} terminó: conéctese de nuevo.`,
    opening: 'Abriendo la página de inicio de sesión…',
    disconnecting: 'Desconectando…',
    revoked: (n) => `Desconectado de ${n}: ${n} aceptó dejar de compartir sus datos con esta aplicación.`,
    pending: (n) => `Desconectado de ${n} aquí. No se pudo contactar a ${n} para terminar el acceso de esta aplicación; se le volverá a pedir. Si mañana esta aplicación todavía aparece en su cuenta de ${n}, quítela allí.`,
    failed: (n) => `Desconectado de ${n} aquí, pero ${n} rechazó terminar el acceso de esta aplicación: puede terminarlo en su cuenta de ${n}.`,
    not_supported: (n) => `Desconectado de ${n} aquí. ${n} no permite que las aplicaciones terminen su acceso: puede terminarlo en su cuenta de ${n}.`,
    disconnected: (n) => `Desconectado de ${n} aquí.`,
    error: (e) =>
      ({
        access_denied: 'No se compartieron sus datos: usted no dio su autorización.',
        rate_limited: 'Demasiadas solicitudes: inténtelo de nuevo en unos momentos.',
        broker_unreachable: 'No se pudo contactar al servicio: revise su conexión e inténtelo de nuevo.',
      })[e?.code] ?? 'Algo salió mal. Inténtelo de nuevo.',
    attribution: 'Usa la API Blue Button 2.0 de CMS. Esta aplicación no está afiliada ni respaldada por los Centros de Servicios de Medicare y Medicaid (CMS) ni por Medicare.gov.',
  },
};

/** The Connect Medicare button: connect, connected state, disconnect, and CMS's attribution. */
export class ConnectMedicareButton extends Base {
  static observedAttributes = ['broker', 'provider', 'lang'];

  #client;
  #creating;
  #disconnecting = false;
  #els;
  #strings;
  #status;
  #busyNow = false;

  /** Text overrides, merged over the language's (`{ connect: (name) => 'Link ' + name }`). */
  get strings() {
    return this.#strings;
  }

  set strings(strings) {
    this.#strings = strings;
    if (this.#els) this.#label();
  }

  /** The words in the element's language (its `lang`, or its nearest ancestor's), with the app's overrides. */
  #t() {
    const lang = (this.closest?.('[lang]')?.getAttribute('lang') ?? '').toLowerCase().split('-')[0];
    return { ...(STRINGS[lang] ?? STRINGS.en), ...this.#strings };
  }

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
    if (name === 'lang') {
      if (this.#els) this.#label();
    } else if (this.#els && this.isConnected) this.refresh();
  }

  /** Finishes a sign-in when the page is a callback, then reads the session and shows it. */
  async refresh() {
    // No client yet and no broker to make one from: wait for the `client` property.
    if (!this.#client && !this.hasAttribute('broker')) return;
    // Its own disconnect is under way and will show what came of it: a refresh meanwhile (the
    // page's, after a read found the connection already gone) would end the busy state early
    // and blank the outcome the user is waiting for.
    if (this.#disconnecting) return;
    // Busy, silently: the live region speaks only of what the user did and what came of it.
    this.#busy(true, '');
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
      const id = this.#provider()?.id;
      const session = await client.session();
      // A disconnect begun meanwhile shows its own outcome.
      if (this.#disconnecting) return;
      const connection = session.connections.find((c) => c.provider === id);
      this.#show(connection?.status);
      if (connection?.status === 'connected') this.#emit('connect-medicare-connected', connection);
      if (redirectError) {
        if (connection?.status !== 'connected') this.#els.status.textContent = this.#t().error(redirectError);
        this.#emit('connect-medicare-error', redirectError);
      }
    } catch (e) {
      if (this.#disconnecting) return;
      if (e?.code === 'not_connected') this.#show(undefined);
      else this.#fail(e);
    }
  }

  /** The provider this button is for: its `provider` attribute, or the broker's first. */
  #provider() {
    const providers = this.#client?.providers ?? [];
    const id = this.getAttribute('provider') ?? providers[0]?.id;
    return providers.find((p) => p.id === id);
  }

  #name() {
    return this.#provider()?.name ?? 'Medicare';
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
<p part="attribution" hidden></p>
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
    this.#els = { button, disconnect, status: root.querySelector('[part=status]'), attribution: root.querySelector('[part=attribution]') };
    // Busy buttons keep their focus and take no click (aria-disabled, not disabled).
    button.addEventListener('click', () => this.#busyNow || this.#connect());
    disconnect.addEventListener('click', () => this.#busyNow || this.#disconnect());
    this.#busy(false, '');
    this.#label();
  }

  /**
   * The words and the attribution for the state shown, in the current language: the buttons
   * always have a name, and CMS's attribution shows for a Blue Button provider (the default
   * until the broker's providers are known). The status line is left as it is.
   */
  #label() {
    const { button, disconnect, attribution } = this.#els;
    const t = this.#t();
    const name = this.#name();
    button.textContent = this.#status === 'reconnect_required' ? t.reconnect(name) : t.connect(name);
    disconnect.textContent = t.disconnect(name);
    attribution.textContent = t.attribution;
    attribution.hidden = (this.#provider()?.kind ?? 'blue_button') !== 'blue_button';
  }

  #show(status) {
    this.#status = status;
    const { button, disconnect, status: line } = this.#els;
    const t = this.#t();
    const name = this.#name();
    const focused = this.shadowRoot.activeElement;
    this.#busy(false, '');
    const connected = status === 'connected';
    button.hidden = connected;
    disconnect.hidden = !connected;
    this.#label();
    line.textContent = connected ? t.connected(name) : status === 'reconnect_required' ? t.ended(name) : '';
    this.toggleAttribute('connected', connected);
    // A focused button that was just hidden hands the focus to the one shown instead.
    if (focused?.hidden) (connected ? disconnect : button).focus();
  }

  #busy(on, message) {
    const { button, disconnect, status } = this.#els;
    this.#busyNow = on;
    // On the host too, for the page's styles (`connect-medicare-button[busy]`).
    this.toggleAttribute('busy', on);
    this.shadowRoot.querySelector('[part=root]').setAttribute('aria-busy', String(on));
    for (const b of [button, disconnect]) {
      b.setAttribute('aria-disabled', String(on));
      b.setAttribute('aria-busy', String(on));
    }
    if (message) status.textContent = message;
  }

  async #connect() {
    this.#busy(true, this.#t().opening);
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
    this.#busy(true, this.#t().disconnecting);
    this.#disconnecting = true;
    try {
      const client = await this.#ready();
      const result = await client.disconnect({ provider: this.getAttribute('provider') ?? undefined });
      this.#show(undefined);
      const t = this.#t();
      const nameOf = (id) => client.providers.find((p) => p.id === id)?.name ?? id;
      const told = (result?.revocations ?? []).map((r) => (t[r.status] ?? t.disconnected)(nameOf(r.provider)));
      this.#els.status.textContent = told.length ? told.join(' ') : t.disconnected(this.#name());
      this.#emit('connect-medicare-disconnected', result);
      this.#els.button.focus();
    } catch (e) {
      this.#fail(e);
    } finally {
      this.#disconnecting = false;
    }
  }

  #fail(error) {
    const t = this.#t();
    this.#busy(false, '');
    this.#els.button.hidden = false;
    this.#label();
    this.#els.status.textContent = t.error(error);
    this.#emit('connect-medicare-error', error);
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }
}

if (globalThis.customElements && !customElements.get('connect-medicare-button')) {
  customElements.define('connect-medicare-button', ConnectMedicareButton);
}
