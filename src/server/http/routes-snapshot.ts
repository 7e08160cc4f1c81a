// GET /v1/snapshot: a consistent online snapshot of the store, streamed as a snapshot archive
// (docs/backup.md; `cairn snapshot save --endpoint`). The store is cut with Db.backupSource:
// no writer waits, and the archive holds every write acknowledged before the request.
//
// On a cluster member the snapshot is of this member's applied state, so the route first makes
// the member linearizable (ReadIndex: the leader's commit index at request time, applied here):
// the archive then holds every write acknowledged before the request, and a prefix of the
// acknowledged writes. A follower serves it itself when the request says
// `?consistency=serializable` (taken by the cluster routing to mean "do not forward"; this route
// runs its own ReadIndex either way, so the snapshot is never stale); otherwise the cluster
// routing forwards the request to the leader, which answers.
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Db } from '../../db/db.js';
import type { ClusterMember } from '../../replica/member.js';
import type { BackupSource } from '../../storage/engine.js';
import { writeArchive } from '../../storage/snapshot-archive.js';

/** SNAPSHOT_CONTENT_TYPE: the media type of a snapshot archive. */
export const SNAPSHOT_CONTENT_TYPE = 'application/vnd.cairn.snapshot';

export function snapshotRoutes(db: Db, member: ClusterMember | undefined): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.get('/v1/snapshot', { config: { command: 'snapshot' } }, async (_request, reply) => {
      if (member !== undefined) await member.replica.linearizable();
      const source = await db.backupSource();
      void reply
        .header('content-type', SNAPSHOT_CONTENT_TYPE)
        .header('x-cairn-snapshot-keys', String(source.keys))
        .header('x-cairn-snapshot-last-ts', String(source.lastTs));
      // The source pins the store's files until closed: closed when the stream ends, fails or
      // the client goes away (Readable.from returns the generator, which runs its finally).
      return reply.send(Readable.from(archiveThenClose(source), { objectMode: false }));
    });
  };
}

async function* archiveThenClose(source: BackupSource): AsyncGenerator<Buffer> {
  try {
    yield* writeArchive(source);
  } finally {
    await source.close();
  }
}
