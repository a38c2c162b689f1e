// OpenAI-compatible HTTP API over one engine, as runtime-neutral fetch handlers.
export { createHandler, type Handler, type HandlerOptions } from './handler.js';
export type { Engine } from './engine.js';
export { HttpError } from './errors.js';
export { parseMessages, parseTools, type ChatPrompt } from './messages.js';
