import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PassphraseLock } from '../../src/agent/passphrase-lock';

describe('PassphraseLock', () => {
  it('refuses an empty passphrase and a second lock', async () => {
    const l = new PassphraseLock();
    assert.equal(await l.lock(Buffer.alloc(0)), undefined);
    assert.equal(l.locked, false);
    assert.equal((await l.lock(Buffer.from('a')))?.length, 32, 'a 32-byte sealing key');
    assert.equal(await l.lock(Buffer.from('b')), undefined);
    assert.equal(l.locked, true);
  });

  it('keeps no copy of the passphrase, only a salted hash', async () => {
    const l = new PassphraseLock();
    const pw = Buffer.from('a distinctive passphrase');
    await l.lock(pw);
    const state = JSON.stringify(Object.values(l as unknown as Record<string, unknown>));
    assert.ok(!state.includes(pw.toString('hex')));
    assert.ok(!state.includes('a distinctive passphrase'));
  });

  it('backs off 0.1 s per failure, capped at 10 s; success resets', async () => {
    const l = new PassphraseLock();
    const asked: number[] = [];
    const sleep = async (ms: number): Promise<void> => {
      asked.push(ms);
    };
    await l.lock(Buffer.from('right'));
    for (let i = 0; i < 3; i++) assert.equal((await l.unlock(Buffer.from('wrong'), sleep)).outcome, 'wrong-passphrase');
    assert.deepEqual(asked, [100, 200, 300]);
    assert.equal((await l.unlock(Buffer.from('right'), sleep)).outcome, 'unlocked');
    assert.equal((await l.unlock(Buffer.from('right'), sleep)).outcome, 'not-locked');
    await l.lock(Buffer.from('right'));
    asked.length = 0;
    assert.equal((await l.unlock(Buffer.from('wrong'), sleep)).outcome, 'wrong-passphrase');
    assert.deepEqual(asked, [100], 'the count restarts after a successful unlock');
  });

  it('unlock gives back the same sealing key that lock gave', async () => {
    const l = new PassphraseLock();
    const sealing = await l.lock(Buffer.from('pw'));
    const r = await l.unlock(Buffer.from('pw'));
    assert.ok(r.outcome === 'unlocked' && sealing !== undefined && r.sealingKey.equals(sealing));
  });

  it('tries concurrent attempts one at a time: each waits for the previous back-off', async () => {
    const gates: (() => void)[] = [];
    const l = new PassphraseLock((ms) => new Promise<void>((resolve) => gates.push(() => resolve(void ms))));
    await l.lock(Buffer.from('right'));
    const outcomes: string[] = [];
    const all = ['w1', 'w2', 'right'].map((p) => l.unlock(Buffer.from(p)).then((r) => outcomes.push(r.outcome)));
    for (let k = 1; k <= 2; k++) {
      while (gates.length < k) await new Promise((resolve) => setTimeout(resolve, 5));
      assert.equal(l.attempts, k, `attempt ${k + 1} has not started while attempt ${k} backs off`);
      gates[k - 1]();
    }
    await Promise.all(all);
    assert.deepEqual(outcomes, ['wrong-passphrase', 'wrong-passphrase', 'unlocked']);
    assert.equal(l.attempts, 3);
  });

  it('caps the delay at 10 s', async () => {
    const l = new PassphraseLock();
    const asked: number[] = [];
    await l.lock(Buffer.from('right'));
    for (let i = 0; i < 105; i++) await l.unlock(Buffer.from('x'), async (ms) => void asked.push(ms));
    assert.equal(Math.max(...asked), 10_000);
    assert.equal(asked[asked.length - 1], 10_000);
  });
});
