// Connect Medicare: connect, complete the callback, one read (through the app's broker).
import { ConnectMedicare } from '../../npm/dist/index.js';

const cm = await ConnectMedicare.create({ broker: '/cm' });
export const connect = () => cm.connect();
export const callback = async () => (await cm.handleRedirect(), cm.patient());
