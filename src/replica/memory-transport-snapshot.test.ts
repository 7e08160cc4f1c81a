// Snapshots over the MemoryHub: the receiver gets a verified copy in a fresh staged directory of
// its own; a cut link, the drop filter, a receiver without a snapshot directory, an unknown
// receiver and a second snapshot in flight all give done(false); the source is always closed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { type Message, message, type NodeId } from '../raft/types.js';
import { openCask } from '../storage/cask/cask-engine.js';
import type { BackupSource, Engine } from '../storage/engine.js';
import { MemoryHub } from './memory-transport.js';
import type { SnapshotSource, Transport, TransportHandlers } from './transport.js';

const engines: Engine[] = [];
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

const snapMsg = (from: NodeId, to: NodeId): Message =>
  message({
    type: 'MsgSnap',
    from,
    to,
    term: 1,
    snapshot: {
      metadata: {
        index: 10,
        term: 1,
        confState: { voters: [1, 2], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
      },
      data: new Uint8Array(0),
    },
  });

function handlers(snapshots: { m: Message; dir: string }[] | undefined): TransportHandlers {
  return {
    onMessages: () => {},
    onUnreachable: () => {},
    onPeerInfo: () => {},
    ...(snapshots === undefined
      ? {}
      : { onSnapshot: (m: Message, dir: string) => snapshots.push({ m, dir }) }),
  };
}

const info = (id: NodeId) => ({ id, name: `n${id}`, resp: '', http: '' });

async function store(): Promise<{ engine: Engine; closes: () => number; source: SnapshotSource }> {
  const engine = await openCask(tmpDir('mem-snap-src'));
  engines.push(engine);
  for (let i = 1; i <= 20; i++) {
    await engine.write(i, [
      { type: 'put', key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`), create: i, version: 1 },
    ]);
  }
  let closes = 0;
  const source: SnapshotSource = async () => {
    const inner = await (engine.backupSource as () => Promise<BackupSource>).call(engine);
    return {
      ...inner,
      files: inner.files,
      read: (...args) => inner.read(...args),
      close: async () => {
        closes++;
        await inner.close();
      },
    };
  };
  return { engine, closes: () => closes, source };
}

const sendP = (t: Transport, m: Message, source: SnapshotSource): Promise<boolean> =>
  new Promise((resolve) => t.sendSnapshot(m, source, resolve));

describe('MemoryHub snapshots', () => {
  it('delivers a verified staged copy that opens with the same keys', async () => {
    const { source, closes } = await store();
    const hub = new MemoryHub();
    const got: { m: Message; dir: string }[] = [];
    const snapshotDir = tmpDir('mem-snap-b');
    const a = hub.join(info(1), handlers([]), {});
    hub.join(info(2), handlers(got), { snapshotDir });
    expect(await sendP(a, snapMsg(1, 2), source)).toBe(true);
    expect(closes()).toBe(1);
    expect(got).toHaveLength(1);
    const dir = (got[0] as { dir: string }).dir;
    expect(path.dirname(dir)).toBe(snapshotDir);
    const copy = await openCask(dir);
    try {
      expect(Buffer.from((await copy.get(Buffer.from('k7'))) ?? []).toString()).toBe('v7');
      expect(Buffer.from((await copy.get(Buffer.from('k20'))) ?? []).toString()).toBe('v20');
    } finally {
      await copy.close();
    }
  });

  it('cut links, the drop filter, no snapshot directory, unknown receivers and a second in flight fail', async () => {
    const { source, closes } = await store();
    const hub = new MemoryHub();
    const got: { m: Message; dir: string }[] = [];
    const snapshotDir = tmpDir('mem-snap-b');
    const a = hub.join(info(1), handlers([]));
    hub.join(info(2), handlers(got), { snapshotDir });
    hub.join(info(3), handlers([]));

    hub.isolate(2);
    expect(await sendP(a, snapMsg(1, 2), source)).toBe(false);
    hub.heal();
    hub.drop = (m) => m.type === 'MsgSnap';
    expect(await sendP(a, snapMsg(1, 2), source)).toBe(false);
    hub.drop = undefined;
    expect(await sendP(a, snapMsg(1, 3), source)).toBe(false); // no snapshot directory
    expect(await sendP(a, snapMsg(1, 9), source)).toBe(false); // unknown
    expect(closes()).toBe(0); // refused before the source was opened

    const first = sendP(a, snapMsg(1, 2), source);
    const second = sendP(a, snapMsg(1, 2), source);
    expect(await second).toBe(false);
    expect(await first).toBe(true);
    expect(closes()).toBe(1);
    expect(got).toHaveLength(1);
    expect(fs.readdirSync(snapshotDir)).toHaveLength(1);
  });
});
