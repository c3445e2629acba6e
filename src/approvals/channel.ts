/**
 * What every way of reaching the user (a desktop notification, an askpass window) offers the
 * pending-approval queue: show a prompt, later maybe an answer, and withdraw it when another
 * method answered first (POLICY.md §4: first answer wins). The terminal method needs none of
 * this: it is the queue's own list()/answer().
 */
import type { PromptText } from './prompt-text';

export type PromptMethod = 'notification' | 'askpass' | 'terminal';

export const DEFAULT_PROMPT_METHODS: readonly PromptMethod[] = ['notification', 'askpass', 'terminal'];

export interface UserAnswer {
  readonly allowed: boolean;
  /** "allow for a while": create a grant (POLICY.md §4). */
  readonly remember: boolean;
}

export interface ShownPrompt {
  /**
   * The user's answer, or null when this method ends without one (notification dismissed or
   * its bus gone, askpass could not be started): the other methods keep waiting.
   * Never rejects.
   */
  readonly answer: Promise<UserAnswer | null>;
  /** Takes the prompt away (close the notification, kill askpass by pid). Idempotent. */
  withdraw(): void;
}

export interface PromptRequest {
  readonly id: string;
  readonly text: PromptText;
  /** How long "remember" lasts, for the button label ("Allow for 15 min"). */
  readonly rememberLabel: string;
  /** The prompt's remaining life; a notification can expire with it. */
  readonly timeoutMs: number;
}

export interface PromptChannel {
  readonly method: Exclude<PromptMethod, 'terminal'>;
  /** Shows the prompt; null when the method is not available now (no bus, no askpass). */
  show(request: PromptRequest): Promise<ShownPrompt | null>;
  /** Releases what the channel holds (a bus connection). */
  close(): void;
}
