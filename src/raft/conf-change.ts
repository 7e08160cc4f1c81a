// Membership changes, as pure functions from (configuration, progress) to a new pair.
// One-at-a-time ("simple") changes alter at most one voter; anything larger goes through a
// joint configuration (Raft thesis §4.3, etcd confchange). docs/raft.md has the safety argument.

import { Inflights, Progress } from './progress.js';
import type { ProgressMap, TrackerConfig } from './tracker.js';
import { isJoint } from './tracker.js';
import type { ConfChange, ConfChangeSingle, ConfState, NodeId } from './types.js';

/** ConfChangeError is a change that cannot be applied to the current configuration. */
export class ConfChangeError extends Error {
  override name = 'ConfChangeError';
}

interface MutableConfig {
  incoming: Set<NodeId>;
  outgoing: Set<NodeId>;
  learners: Set<NodeId>;
  learnersNext: Set<NodeId>;
  autoLeave: boolean;
}

/** ChangeContext is what a change needs besides the config: the log's last index and window limits. */
export interface ChangeContext {
  readonly lastIndex: number;
  readonly maxInflight: number;
  readonly maxInflightBytes: number;
}

function copy(cfg: TrackerConfig, prs: ProgressMap): { cfg: MutableConfig; prs: ProgressMap } {
  return {
    cfg: {
      incoming: new Set(cfg.voters.incoming),
      outgoing: new Set(cfg.voters.outgoing),
      learners: new Set(cfg.learners),
      learnersNext: new Set(cfg.learnersNext),
      autoLeave: cfg.autoLeave,
    },
    // Progress objects are cloned on write (setLearner), so the input map is never altered.
    prs: new Map(prs),
  };
}

function freeze(cfg: MutableConfig): TrackerConfig {
  return {
    voters: { incoming: cfg.incoming, outgoing: cfg.outgoing },
    learners: cfg.learners,
    learnersNext: cfg.learnersNext,
    autoLeave: cfg.autoLeave,
  };
}

/** setLearner sets id's learner flag on a private copy of its progress. */
function setLearner(prs: ProgressMap, id: NodeId, isLearner: boolean): void {
  const pr = prs.get(id);
  if (pr === undefined || pr.isLearner === isLearner) return;
  const copy = pr.clone();
  copy.isLearner = isLearner;
  prs.set(id, copy);
}

function initProgress(prs: ProgressMap, ctx: ChangeContext, id: NodeId, isLearner: boolean): void {
  // A new member starts probing at the end of our log; recentActive so that check-quorum does
  // not depose the leader before the newcomer had a chance to answer.
  const pr = new Progress(
    Math.max(ctx.lastIndex, 1),
    new Inflights(ctx.maxInflight, ctx.maxInflightBytes),
    isLearner,
  );
  pr.recentActive = true;
  prs.set(id, pr);
}

function applyChanges(
  cfg: MutableConfig,
  prs: ProgressMap,
  ctx: ChangeContext,
  changes: readonly ConfChangeSingle[],
): void {
  for (const cc of changes) {
    if (cc.nodeId === 0) continue; // etcd ignores changes for node 0.
    switch (cc.type) {
      case 'addNode': {
        if (!prs.has(cc.nodeId)) initProgress(prs, ctx, cc.nodeId, false);
        else setLearner(prs, cc.nodeId, false);
        cfg.learners.delete(cc.nodeId);
        cfg.learnersNext.delete(cc.nodeId);
        cfg.incoming.add(cc.nodeId);
        break;
      }
      case 'addLearner': {
        const pr = prs.get(cc.nodeId);
        if (pr === undefined) initProgress(prs, ctx, cc.nodeId, true);
        else if (pr.isLearner && cfg.learners.has(cc.nodeId)) break;
        cfg.incoming.delete(cc.nodeId);
        cfg.learners.delete(cc.nodeId);
        cfg.learnersNext.delete(cc.nodeId);
        // A voter of the outgoing half stays a voter until the joint config is left; it
        // becomes a learner then (learnersNext). Otherwise it is a learner right away.
        if (cfg.outgoing.has(cc.nodeId)) {
          cfg.learnersNext.add(cc.nodeId);
        } else {
          setLearner(prs, cc.nodeId, true);
          cfg.learners.add(cc.nodeId);
        }
        break;
      }
      case 'removeNode': {
        cfg.incoming.delete(cc.nodeId);
        cfg.learners.delete(cc.nodeId);
        cfg.learnersNext.delete(cc.nodeId);
        // Still a voter in the outgoing half: keep its progress until the joint config is left.
        if (!cfg.outgoing.has(cc.nodeId)) prs.delete(cc.nodeId);
        break;
      }
    }
  }
  if (cfg.incoming.size === 0) throw new ConfChangeError('removed all voters');
}

function checkInvariants(cfg: MutableConfig, prs: ProgressMap): void {
  const all = [...cfg.incoming, ...cfg.outgoing, ...cfg.learners, ...cfg.learnersNext];
  for (const id of all) {
    if (!prs.has(id)) throw new ConfChangeError(`no progress for ${id}`);
  }
  for (const id of cfg.learnersNext) {
    if (!cfg.outgoing.has(id)) throw new ConfChangeError(`${id} in learnersNext but not outgoing`);
    if ((prs.get(id) as Progress).isLearner) throw new ConfChangeError(`${id} in learnersNext is a learner`);
  }
  for (const id of cfg.learners) {
    if (cfg.incoming.has(id) || cfg.outgoing.has(id)) throw new ConfChangeError(`${id} is voter and learner`);
    if (!(prs.get(id) as Progress).isLearner) throw new ConfChangeError(`learner ${id} not marked`);
  }
  if (cfg.outgoing.size === 0 && cfg.learnersNext.size > 0)
    throw new ConfChangeError('learnersNext outside joint');
  if (cfg.outgoing.size === 0 && cfg.autoLeave) throw new ConfChangeError('autoLeave outside joint');
}

/** isLeaveJoint says whether cc is the empty change that leaves a joint configuration. */
export function isLeaveJoint(cc: ConfChange): boolean {
  return cc.changes.length === 0;
}

/**
 * usesJoint says whether cc must go through a joint configuration: forced by its transition,
 * or because it changes more than one voter.
 */
export function usesJoint(cc: ConfChange, cfg: TrackerConfig): boolean {
  if (cc.transition !== 'auto') return true;
  let voterChanges = 0;
  for (const c of cc.changes) {
    const isVoterNow = cfg.voters.incoming.has(c.nodeId);
    const willBeVoter = c.type === 'addNode';
    if (isVoterNow !== willBeVoter) voterChanges++;
  }
  return voterChanges > 1;
}

/**
 * applyConfChange returns the configuration and progress map after cc. It throws
 * ConfChangeError if cc cannot be applied (the leader checks this before proposing).
 */
export function applyConfChange(
  cfg: TrackerConfig,
  prs: ProgressMap,
  ctx: ChangeContext,
  cc: ConfChange,
): { cfg: TrackerConfig; prs: ProgressMap } {
  const c = copy(cfg, prs);
  if (isLeaveJoint(cc)) {
    if (!isJoint(cfg)) throw new ConfChangeError('not in a joint config');
    for (const id of c.cfg.learnersNext) {
      c.cfg.learners.add(id);
      setLearner(c.prs, id, true);
    }
    c.cfg.learnersNext.clear();
    for (const id of c.cfg.outgoing) {
      if (!c.cfg.incoming.has(id) && !c.cfg.learners.has(id)) c.prs.delete(id);
    }
    c.cfg.outgoing = new Set();
    c.cfg.autoLeave = false;
  } else if (usesJoint(cc, cfg)) {
    if (isJoint(cfg)) throw new ConfChangeError('already in a joint config');
    if (c.cfg.incoming.size === 0) throw new ConfChangeError("can't make a zero-voter config joint");
    c.cfg.outgoing = new Set(c.cfg.incoming);
    applyChanges(c.cfg, c.prs, ctx, cc.changes);
    c.cfg.autoLeave = cc.transition !== 'jointExplicit';
  } else {
    if (isJoint(cfg)) throw new ConfChangeError('cannot make a simple change in a joint config');
    applyChanges(c.cfg, c.prs, ctx, cc.changes);
    let diff = 0;
    for (const id of c.cfg.incoming) if (!cfg.voters.incoming.has(id)) diff++;
    for (const id of cfg.voters.incoming) if (!c.cfg.incoming.has(id)) diff++;
    if (diff > 1) throw new ConfChangeError('more than one voter changed without entering a joint config');
  }
  checkInvariants(c.cfg, c.prs);
  return { cfg: freeze(c.cfg), prs: c.prs };
}

/**
 * restoreConfState rebuilds a configuration from a snapshot's ConfState: first the outgoing
 * voters as a simple config, then a joint change to the incoming voters and learners.
 */
export function restoreConfState(
  cs: ConfState,
  ctx: ChangeContext,
): { cfg: TrackerConfig; prs: ProgressMap } {
  const cfg: MutableConfig = {
    incoming: new Set(),
    outgoing: new Set(),
    learners: new Set(),
    learnersNext: new Set(),
    autoLeave: false,
  };
  const prs: ProgressMap = new Map();
  if (cs.votersOutgoing.length === 0) {
    for (const id of cs.voters) {
      initProgress(prs, ctx, id, false);
      cfg.incoming.add(id);
    }
    for (const id of cs.learners) {
      initProgress(prs, ctx, id, true);
      cfg.learners.add(id);
    }
  } else {
    for (const id of cs.votersOutgoing) {
      initProgress(prs, ctx, id, false);
      cfg.outgoing.add(id);
    }
    for (const id of cs.voters) {
      if (!prs.has(id)) initProgress(prs, ctx, id, false);
      else (prs.get(id) as Progress).isLearner = false;
      cfg.incoming.add(id);
    }
    for (const id of cs.learners) {
      if (!prs.has(id)) initProgress(prs, ctx, id, true);
      cfg.learners.add(id);
    }
    for (const id of cs.learnersNext) cfg.learnersNext.add(id);
    cfg.autoLeave = cs.autoLeave;
  }
  checkInvariants(cfg, prs);
  return { cfg: freeze(cfg), prs };
}

/** ConfChange payloads are encoded as JSON in a confChange entry's data. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({ transition: cc.transition, changes: cc.changes, context: [...cc.context] }),
  );
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const v = JSON.parse(new TextDecoder().decode(data)) as {
    transition: ConfChange['transition'];
    changes: ConfChangeSingle[];
    context: number[];
  };
  return { transition: v.transition, changes: v.changes, context: new Uint8Array(v.context) };
}
