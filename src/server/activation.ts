/**
 * systemd socket activation (sd_listen_fds(3)): which inherited fds are ours and what each is
 * for. systemd passes LISTEN_FDS fds starting at 3, LISTEN_PID naming the process meant to
 * take them, and LISTEN_FDNAMES (colon-separated) with each socket unit's
 * FileDescriptorName=. tsagent.socket names its fd "agent", tsagent-control.socket "control"
 * (POLICY.md §5). Pure: reads only the environment it is given.
 */
import { SocketError } from '../errors';

/** The first inherited fd (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

export interface ActivatedSockets {
  /** The fd to serve the agent protocol on. */
  readonly agent: number;
  /** The fd for the control socket, when the manager passed one named "control". */
  readonly control: number | undefined;
}

/** The variables sd_listen_fds(3) reads, to remove once read so children do not inherit them. */
export const ACTIVATION_VARIABLES = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'] as const;

/**
 * The sockets systemd passed to process `pid`, or undefined when it passed none (not
 * activated, or LISTEN_PID names another process). Names pick the fds: "agent" and "control".
 * Without names, or with names from older units (systemd defaults a name to the socket unit's
 * name, e.g. "tsagent.socket"), the first fd not named "control" is the agent's, so one fd
 * without a name behaves as it always did. Throws a SocketError when fds were passed but none
 * can be the agent's (only a control socket, say).
 */
export function activatedSockets(env: NodeJS.ProcessEnv, pid: number): ActivatedSockets | undefined {
  if (env.LISTEN_PID !== String(pid)) return undefined;
  const count = Number(env.LISTEN_FDS);
  if (!Number.isInteger(count) || count < 1) return undefined;
  const names = env.LISTEN_FDNAMES === undefined ? [] : env.LISTEN_FDNAMES.split(':');
  const fdNamed = (name: string): number | undefined => {
    const i = names.slice(0, count).indexOf(name);
    return i < 0 ? undefined : LISTEN_FDS_START + i;
  };
  const control = fdNamed('control');
  let agent = fdNamed('agent');
  if (agent === undefined) {
    for (let i = 0; i < count && agent === undefined; i++) {
      if (names[i] !== 'control') agent = LISTEN_FDS_START + i;
    }
  }
  if (agent === undefined) {
    throw new SocketError(`socket activation passed ${count} fd(s) (${names.join(', ')}) but none for the agent`);
  }
  return { agent, control };
}

/** The control socket next to an agent socket path: AGENT_SOCKET.ctl (POLICY.md §5); shared with the client. */
export { controlSocketPath } from '../protocol/control';
