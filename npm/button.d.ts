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
  /** Reads the session again and shows its state. */
  refresh(): Promise<void>;
}

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
