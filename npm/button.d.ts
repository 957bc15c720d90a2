/**
 * `connect-medicare/button`: `<connect-medicare-button>`. Importing it registers the element.
 *
 * @module connect-medicare/button
 */
// Types of `connect-medicare/button`. Importing it registers <connect-medicare-button>.
import type { Connection, ConnectMedicare, ConnectMedicareError, DisconnectResult } from './index.js';

/**
 * `<connect-medicare-button broker="/cm" provider="medicare" method="get" return-to="/claims">`:
 * connects, shows the connected state with a disconnect action, and the attribution CMS
 * requires. Theme it with CSS custom properties (`--cm-button-background`, `--cm-button-color`,
 * `--cm-button-radius`, `--cm-focus-ring`, ...) or `::part(button)`.
 */
export class ConnectMedicareButton extends HTMLElement {
  /** The client; made from the `broker` attribute when not set. */
  client: ConnectMedicare | undefined;
  /**
   * Text overrides, merged over the words of the element's language (its `lang`, or its
   * nearest ancestor's: English, or Spanish for `es`).
   *
   * @example
   * button.strings = { connect: (name) => `Link your ${name} account` };
   */
  strings: Partial<ButtonStrings> | undefined;
  /** Reads the session again and shows its state. */
  refresh(): Promise<void>;
}

/** Everything the button says. `name` is the provider's display name. */
export interface ButtonStrings {
  connect(name: string): string;
  reconnect(name: string): string;
  disconnect(name: string): string;
  connected(name: string): string;
  ended(name: string): string;
  opening: string;
  disconnecting: string;
  /** After a disconnect the provider accepted. */
  revoked(name: string): string;
  /** After a disconnect the provider could not be reached for (it will be asked again). */
  pending(name: string): string;
  /** After a disconnect the provider refused. */
  failed(name: string): string;
  /** After a disconnect at a provider without revocation. */
  not_supported(name: string): string;
  /** After a disconnect with nothing more to say. */
  disconnected(name: string): string;
  /** A failure, in words for the user. */
  error(error: ConnectMedicareError | unknown): string;
  /** CMS's attribution, shown for Blue Button providers only. */
  attribution: string;
}

/** The button's words in English (`en`) and Spanish (`es`). */
export const STRINGS: { en: ButtonStrings; es: ButtonStrings };

declare global {
  interface HTMLElementTagNameMap {
    'connect-medicare-button': ConnectMedicareButton;
  }
  interface HTMLElementEventMap {
    'connect-medicare-connected': CustomEvent<Connection>;
    'connect-medicare-disconnected': CustomEvent<DisconnectResult>;
    'connect-medicare-error': CustomEvent<ConnectMedicareError>;
  }
}
