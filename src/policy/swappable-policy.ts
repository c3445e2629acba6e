/**
 * The PolicyPort the keyring holds for its whole life, delegating to the policy of the
 * configuration in force: `tsagent reload` swaps the target in one assignment, so a request
 * is judged wholly by the old or wholly by the new configuration, never a mix.
 */
import type { KeyView, PolicyDecision, PolicyPort, SignQuestion } from '../agent/ports';
import type { Destination } from '../context/types';

export class SwappablePolicy implements PolicyPort {
  private swaps = 0;

  constructor(private current: PolicyPort) {}

  /** RulePolicy decides from the question and its configuration alone (see PolicyPort). */
  get generation(): number {
    return this.swaps;
  }

  swap(next: PolicyPort): void {
    this.current = next;
    this.swaps++;
  }

  selectForList(keys: readonly KeyView[], destination: Destination | null): readonly KeyView[] {
    return this.current.selectForList(keys, destination);
  }

  decideSign(q: SignQuestion): PolicyDecision {
    return this.current.decideSign(q);
  }
}
