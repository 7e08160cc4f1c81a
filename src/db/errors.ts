// The typed errors of the public API. They are defined by the storage layer (which raises most
// of them) and re-exported here so users import everything from 'cairn-db'.
export {
  CairnError,
  ClosedError,
  ClusterDownError,
  ClusterMemberDirectoryError,
  CorruptionError,
  type ErrorCode,
  IncompatibleError,
  InvalidArgumentError,
  IoError,
  KeyNotFoundError,
  LimitError,
  LockedError,
  StoreFailedError,
  UncertainError,
} from '../storage/errors.js';
