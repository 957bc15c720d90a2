// oidc-client-ts: a redirect sign-in with PKCE and state, the callback, one read.
import { UserManager } from 'oidc-client-ts';

const manager = new UserManager({
  authority: 'https://sandbox.bluebutton.cms.gov',
  client_id: 'app',
  redirect_uri: `${location.origin}/callback`,
  scope: 'openid patient/Patient.rs',
});
export const connect = () => manager.signinRedirect();
export const callback = async () => {
  const user = await manager.signinRedirectCallback();
  const response = await fetch('https://sandbox.bluebutton.cms.gov/v2/fhir/Patient/-20140000008325', {
    headers: { authorization: `Bearer ${user.access_token}` },
  });
  return response.json();
};
