/**
 * The fuzzer (fuzzer.ts), briefly: a few seconds of random and mutated frames against the
 * real daemon, with the control client checking answers throughout. `npm run fuzz` runs the
 * same at length (>= 1 M frames).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runFuzz } from './fuzzer';

describe('fuzz (brief)', () => {
  it(
    'random and mutated frames: no crash, the control client is answered correctly throughout',
    { timeout: 120_000 },
    async () => {
      const r = await runFuzz({ frames: 20_000, maxSeconds: Number(process.env.FUZZ_SECONDS ?? 5) });
      process.stdout.write(`# fuzz: ${JSON.stringify(r)}\n`);
      assert.equal(r.crashes, 0, 'the daemon never died');
      assert.deepEqual(r.controlFailures, []);
      assert.ok(r.controlChecks >= 2, 'the control client checked during and after the run');
      assert.ok(r.frames > 0 && r.replies > 0);
    },
  );
});
