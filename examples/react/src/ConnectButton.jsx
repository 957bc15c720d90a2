import { useCallback } from 'react';

/**
 * <connect-medicare-button> from React: `client` is given as a property (React 19 sets a
 * custom element's known properties as properties, before the element enters the page, so
 * the button never makes a client of its own), and its events reach `onConnected` /
 * `onDisconnected` through listeners the ref callback adds and removes. `ref` gets the
 * element (for `refresh()`).
 */
export function ConnectButton({ ref, client, returnTo, onConnected, onDisconnected }) {
  const attach = useCallback(
    (element) => {
      if (ref) ref.current = element;
      const connected = (event) => onConnected?.(event.detail);
      const disconnected = (event) => onDisconnected?.(event.detail);
      element.addEventListener('connect-medicare-connected', connected);
      element.addEventListener('connect-medicare-disconnected', disconnected);
      return () => {
        element.removeEventListener('connect-medicare-connected', connected);
        element.removeEventListener('connect-medicare-disconnected', disconnected);
        if (ref) ref.current = null;
      };
    },
    [ref, onConnected, onDisconnected],
  );
  return <connect-medicare-button ref={attach} client={client} return-to={returnTo} />;
}
