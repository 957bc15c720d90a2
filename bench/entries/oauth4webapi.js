// oauth4webapi: discovery, PKCE and state, the code grant, one protected resource request.
import * as oauth from 'oauth4webapi';

const issuer = new URL('https://sandbox.bluebutton.cms.gov');
const client = { client_id: 'app' };
const redirectUri = `${location.origin}/callback`;
const server = () => oauth.discoveryRequest(issuer).then((r) => oauth.processDiscoveryResponse(issuer, r));

export const connect = async () => {
  const as = await server();
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  sessionStorage.setItem('flow', JSON.stringify({ verifier, state }));
  const url = new URL(as.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: client.client_id,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'openid patient/Patient.rs',
    state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  location.assign(url);
};
export const callback = async () => {
  const as = await server();
  const { verifier, state } = JSON.parse(sessionStorage.getItem('flow'));
  const params = oauth.validateAuthResponse(as, client, new URL(location.href), state);
  const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, verifier);
  const tokens = await oauth.processAuthorizationCodeResponse(as, client, response);
  const read = await oauth.protectedResourceRequest(
    tokens.access_token,
    'GET',
    new URL('https://sandbox.bluebutton.cms.gov/v2/fhir/Patient/-20140000008325'),
  );
  return read.json();
};
