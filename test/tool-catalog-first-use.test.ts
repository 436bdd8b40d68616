/**
 * Trust on first use when calls arrive together: a read of the approvals that began before this
 * process approved a tool, and answers after, must not make the tool look unapproved again (it
 * once refused a call with WARDEN_TOOL_NOT_APPROVED under a burst through three replicas).
 * A real SQLite store; only the timing of one snapshot is held back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createToolCatalog } from '../src/policy/tool-catalog.js';
import { openStore } from '../src/store/open-store.js';
import type { Store } from '../src/store/types.js';

const TOOL = {
  name: 'echo',
  description: 'Says it back.',
  inputSchema: { type: 'object', properties: { text: { type: 'string' } } },
};

test('an approvals snapshot read before a first-use approval does not undo it', async () => {
  const store = await openStore('sqlite::memory:');
  try {
    let holdNext: ((release: () => void) => void) | undefined;
    const toolDefinitions: Store['toolDefinitions'] = {
      ...store.toolDefinitions,
      approvedHashes: async () => {
        const snapshot = await store.toolDefinitions.approvedHashes();
        const hold = holdNext;
        holdNext = undefined;
        if (hold !== undefined) await new Promise<void>((release) => hold(release));
        return snapshot;
      },
    };
    const catalog = createToolCatalog({
      store: { toolDefinitions },
      mode: 'trust_on_first_use',
      now: Date.now,
      record: async () => undefined,
      alert: () => undefined,
    });
    // A lookup whose approvals read is taken now (the tool is not approved yet) and answers late.
    let releaseStale: (() => void) | undefined;
    holdNext = (release) => {
      releaseStale = release;
    };
    const staleLookup = catalog.lookup('u', 'echo');
    while (releaseStale === undefined) await new Promise((resolve) => setTimeout(resolve, 1));
    // Meanwhile the first listing approves the tool on first use.
    const listed = await catalog.observe('u', [TOOL]);
    assert.equal(listed.get('echo')?.status, 'approved');
    releaseStale();
    await staleLookup;
    const after = await catalog.lookup('u', 'echo');
    assert.equal(after.status, 'approved', 'the late snapshot did not take the approval back');
  } finally {
    await store.close();
  }
});
