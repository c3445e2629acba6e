/**
 * The known_hosts namer the agent session calls for each bound host key (POLICY.md §1,
 * key -> names): candidates for hashed entries are the peer ssh's argv destination and the
 * config's literal host names. Matches DestinationNamer in ./types once the session has it:
 * (hostKey, process) => { names, port }.
 */
import type { HostCandidate } from './host-patterns';
import type { NameResolver, ProvenNames } from './known-hosts';
import { configCandidates, peerCandidates } from './ssh-argv';
import type { ProcessInfo } from './types';

export type KnownHostsNamer = (hostKey: Buffer, process: ProcessInfo | null) => ProvenNames;

/**
 * `configNames`: every literal name in the config's `hosts` lists (patterns are skipped);
 * re-create the namer on reload. Candidates per process are kept for the last process seen
 * (a connection asks once per binding with the same process).
 */
export function knownHostsNamer(resolver: Pick<NameResolver, 'namesFor'>, configNames: readonly string[] = []): KnownHostsNamer {
  const fromConfig = configCandidates(configNames);
  let lastProcess: ProcessInfo | null | undefined;
  let lastCandidates: readonly HostCandidate[] = fromConfig;
  return (hostKey, process) => {
    if (process !== lastProcess) {
      lastProcess = process;
      lastCandidates = [...peerCandidates(process), ...fromConfig];
    }
    return resolver.namesFor(hostKey, lastCandidates);
  };
}
