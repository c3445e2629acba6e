/** Approvals (POLICY.md §4): pending approvals, prompt methods, grants, control commands. */
export {
  PendingApprovals,
  DEFAULT_MAX_PENDING,
  DEFAULT_MAX_SHOWN,
  DEFAULT_PROMPT_TIMEOUT_MS,
  defaultChannels,
  durationLabel,
} from './pending';
export type { ApprovalsOptions, TerminalAnswerResult } from './pending';
export { GrantStore, DEFAULT_REMEMBER_MS } from './grants';
export type { GrantStoreOptions } from './grants';
export { approvalCommands, approvalHandlers } from './handlers';
export type { ApprovalHandlers, CommandArgs } from './handlers';
export { AskpassChannel, runAskpass } from './askpass';
export type { AskpassOptions, AskpassShown } from './askpass';
export { NotificationChannel, escapeMarkup } from './notification';
export type { NotificationAction, NotificationOptions } from './notification';
export { busSocketPath, sessionBusPath } from './dbus-session';
export { DEFAULT_PROMPT_METHODS } from './channel';
export type { PromptChannel, PromptMethod, PromptRequest, ShownPrompt, UserAnswer } from './channel';
export {
  promptText,
  escapePeerText,
  describeProgram,
  describeDestination,
  describePurpose,
  describeKey,
  MAX_PROMPT_BYTES,
} from './prompt-text';
export type { PromptText } from './prompt-text';
export type { ApprovalJson, GrantJson, ApprovalKeyJson } from './records';
