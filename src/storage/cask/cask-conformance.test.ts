import { poisoned } from '../../../test/support/poison.js';
import { describeEngineConformance } from '../../txn/engine-conformance.js';
import { openCask } from './cask-engine.js';

describeEngineConformance('cask', openCask);
// Again with every caller buffer overwritten once the call returns and once it settles: the
// engine must copy whatever it keeps (docs/ARCHITECTURE.md, "Who owns a buffer").
describeEngineConformance('cask', async (dir, options) => poisoned(await openCask(dir, options)), {
  variant: 'borrowed buffers poisoned',
});
