// The broker's wire format is snake_case (the HTTP contract, protocol/src/contract.rs); what the
// SDK hands the app is camelCase. Every mapping between the two is here.

/** A `/v1/config` provider entry, as `client.providers` shows it. */
export const providerOf = ({ id, name, kind, revocation_supported, max_page_size }) => ({
  id,
  name,
  kind,
  revocationSupported: revocation_supported === true,
  maxPageSize: max_page_size ?? null,
});

/** A `/v1/session` answer (and the session a sign-in answers). */
export const sessionOf = (wire) => ({
  connections: (wire?.connections ?? []).map(({ provider, status, patient, scopes, demographics_shared, grant_expires_at }) => ({
    provider,
    status,
    patient: patient ?? null,
    scopes: scopes ?? [],
    demographicsShared: demographics_shared === true,
    grantExpiresAt: grant_expires_at ?? null,
  })),
});

/** A `/v1/session/disconnect` answer. */
export const disconnectOf = ({ disconnected, revocations } = {}) => ({
  disconnected: disconnected ?? [],
  revocations: (revocations ?? []).map(({ provider, status }) => ({ provider, status })),
});
