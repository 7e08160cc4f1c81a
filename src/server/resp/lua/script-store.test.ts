import { describe, expect, it } from 'vitest';
import { ClusterDownError } from '../../../storage/errors.js';
import { ManualEngine } from '../../../txn/manual-engine.js';
import { WritePipeline } from '../../../txn/write-pipeline.js';
import { pipelineBase, ScriptStore } from './script-store.js';

/** StaleEngine: a cluster member whose leadership the read barrier cannot confirm. */
class StaleEngine extends ManualEngine {
  barriers = 0;
  readBarrier(): Promise<void> {
    this.barriers++;
    return Promise.reject(new ClusterDownError('read index not confirmed'));
  }
}

describe('ScriptStore', () => {
  // A script that only reads is a read: on a deposed leader its reply must not be given from a
  // state the successor has moved past, so its commit waits for the read barrier.
  it("a script that writes nothing waits for the pipeline's read barrier", async () => {
    const engine = new StaleEngine();
    const store = new ScriptStore(pipelineBase(new WritePipeline(engine)), () => 0);
    expect(store.readLatest(Buffer.from('k')).value).toBeUndefined();
    const done = store.commit();
    expect(engine.barriers).toBe(1);
    await expect(done).rejects.toBeInstanceOf(ClusterDownError);
  });

  it('a script that writes waits for its batch, not for a read barrier', async () => {
    const engine = new StaleEngine();
    const store = new ScriptStore(pipelineBase(new WritePipeline(engine)), () => 0);
    store.put(Buffer.from('k'), Buffer.from('v'));
    const done = store.commit();
    expect(engine.barriers).toBe(0);
    engine.commit();
    await done;
    expect(engine.data.get('k')?.toString()).toBe('v');
  });
});
