import { webConformance } from './web-suite.ts';
import { startTestBridge } from '../helpers/bridge.ts';
import { webIdentity } from '../helpers/web-terminal.ts';

/** authorized_keys mode names an identity by its key's comment: the test key's. */
const IDENTITY = 'tester@podbridge-test';

webConformance({
  name: 'local backend',
  async start() {
    const b = await startTestBridge({ backend: 'local' });
    return { hub: b.bridge.terminals, identity: webIdentity(IDENTITY), login: 'default.anything', close: b.close };
  },
  errorCase: { login: 'not a..login', message: /invalid login name "not a\.\.login": it has '\.\.' at character 6/ },
});
