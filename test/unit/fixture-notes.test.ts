/**
 * The fixture recorder (test/tools/record-fixtures.ts) describes each recorded body through
 * the project's codec: for every committed fixture, its manifest note starts with exactly
 * that description, so re-recording keeps the manifest's wording.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { describeMessage } from '../tools/fixture-notes';
import type { Direction } from '../tools/fixture-notes';

const DIR = resolve(__dirname, '../../../test/fixtures/messages');

interface Entry {
  readonly file: string;
  readonly direction: Direction;
  readonly note: string;
}

const manifest = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8')) as Entry[];

describe('fixture notes', () => {
  it('every committed note starts with the description of its bytes', () => {
    assert.ok(manifest.length > 0);
    for (const e of manifest) {
      const described = describeMessage(readFileSync(join(DIR, e.file)), e.direction);
      assert.ok(e.note === `${described}.` || e.note.startsWith(`${described}. `), `${e.file}: ${described} vs ${e.note}`);
      assert.doesNotMatch(described, /unparsed/, e.file);
    }
  });

  it('a body the codec refuses is described, not thrown', () => {
    assert.match(describeMessage(Buffer.from([13, 0, 0]), 'request'), /^13 SSH2_AGENTC_SIGN_REQUEST, \(unparsed: /);
    assert.equal(describeMessage(Buffer.from([1]), 'request'), '1 SSH_AGENTC_REQUEST_RSA_IDENTITIES (legacy)');
  });
});
