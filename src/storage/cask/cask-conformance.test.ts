import { describeEngineConformance } from '../engine-conformance.js';
import { openCask } from './cask-engine.js';

describeEngineConformance('cask', openCask);
