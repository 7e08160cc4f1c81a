// The typed errors of the public API. They are defined by the storage layer (which raises most
// of them) and re-exported here so users import everything from 'cairn-db'.
export {
  CairnError,
  ClosedError,
  CorruptionError,
  type ErrorCode,
  IncompatibleError,
  InvalidArgumentError,
  IoError,
  KeyNotFoundError,
  LimitError,
  LockedError,
  StoreFailedError,
} from '../storage/errors.js';
