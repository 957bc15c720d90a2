// fhirclient (SMART's JS client): authorize, ready on the callback, one read.
import FHIR from 'fhirclient';

export const connect = () =>
  FHIR.oauth2.authorize({
    clientId: 'app',
    scope: 'openid patient/Patient.rs',
    iss: 'https://sandbox.bluebutton.cms.gov/v2/fhir/',
    redirectUri: '/callback',
  });
export const callback = async () => (await FHIR.oauth2.ready()).request('Patient/-20140000008325');
