export {
  makeContext,
  chatStopTokenIds,
  DEFAULT_SYSTEM,
  DEFAULT_MAX_WINDOW_SIZE,
  type MakeContextOptions,
  type ChatContext,
} from './makeContext.js';
