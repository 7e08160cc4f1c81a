// The public API of the Raft core. Everything else in src/raft is an implementation detail.

export type { ChangeContext } from './conf-change.js';
export { ConfChangeError, decodeConfChange, encodeConfChange } from './conf-change.js';
export type { LogStorage } from './log-storage.js';
export { MemoryStorage } from './log-storage.js';
export type { RaftConfig, Status } from './raft.js';
export { CAMPAIGN_TRANSFER, defaultConfig, ProposalDroppedError } from './raft.js';
export { checkPersistedBeforeSend, LEADER_MESSAGES, RawNode } from './raw-node.js';
export type {
  ConfChange,
  ConfChangeSingle,
  ConfChangeTransition,
  ConfChangeType,
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  NodeId,
  ReadState,
  Ready,
  Snapshot,
  SnapshotMetadata,
  SoftState,
  StateType,
} from './types.js';
export {
  DRIVER_MESSAGES,
  EMPTY_CONF_STATE,
  EMPTY_HARD_STATE,
  isEmptyHardState,
  isEmptySnapshot,
  message,
  NONE,
} from './types.js';
