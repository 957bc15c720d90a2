// The npm package's paging rules (npm/src/paging.js, imported from the sources: the data page
// loads no wasm, so the JS keeps its own copy of the protocol crate's rules) against the shared
// cases of fixtures/paging/vectors.json, which protocol/src/paging.rs is checked against too
// (its `vectors` tests): a rule changed on one side only fails that side's test.
//
//   cd tests && node --test npm/paging-vectors.test.mjs
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { pageOf, nextPage, pagePlan } = await import(join(repo, 'npm', 'src', 'paging.js'));
const vectors = JSON.parse(readFileSync(join(repo, 'fixtures', 'paging', 'vectors.json'), 'utf8'));

const KINDS = ['links', 'next', 'plans'];

/** The cases of `kind` this side checks: shared ones and JS-only ones. */
const ours = (kind) => vectors[kind].filter((c) => (c.sides ?? ['rust', 'js']).includes('js'));

/** A page as the vectors write it: FHIR's `_count`, no member for an absent one. */
function written(page) {
  if (page === null) return null;
  if (page.token !== undefined) return { token: page.token };
  return page.count === undefined ? { startIndex: page.startIndex } : { startIndex: page.startIndex, _count: page.count };
}

/** An expected plan: a list of pages, or `{ pages, startIndex, _count }` for a long one. */
function expanded(plan) {
  if (plan === null || Array.isArray(plan)) return plan;
  return Array.from({ length: plan.pages }, (_, i) => ({ startIndex: plan.startIndex + i * plan._count, _count: plan._count }));
}

/** Checks `run()` against a case's `expect`, `shape` turning an answer into the vectors' form. */
function check(c, run, shape) {
  if ('refused' in c.expect) {
    assert.throws(run, (e) => e?.code === 'upstream_error', `refused: ${c.expect.refused}`);
    return;
  }
  const [[key, expected]] = Object.entries(c.expect);
  assert.deepEqual({ [key]: shape(run()) }, { [key]: key === 'plan' ? expanded(expected) : expected });
}

test('the vectors are well formed', () => {
  for (const kind of KINDS) {
    assert.ok(vectors[kind].length > 0, kind);
    const names = new Set();
    for (const c of vectors[kind]) {
      assert.equal(typeof c.name, 'string');
      assert.ok(!names.has(c.name), `${kind}: '${c.name}' twice`);
      names.add(c.name);
      assert.equal(Object.keys(c.expect).length, 1, c.name);
      assert.ok(['page', 'plan', 'refused'].includes(Object.keys(c.expect)[0]), c.name);
      if (c.sides !== undefined) {
        assert.ok(c.sides.length === 1 && ['rust', 'js'].includes(c.sides[0]), `${c.name}: sides`);
        assert.ok(typeof c.why === 'string' && c.why.length > 0, `${c.name}: a case for one side says why`);
      } else {
        assert.equal(c.why, undefined, `${c.name}: why without sides`);
      }
      if (c.start !== undefined) assert.deepEqual(c.sides, ['js'], `${c.name}: start is JS's only`);
    }
  }
});

describe('link → page (pageOf)', () => {
  for (const c of ours('links')) test(c.name, () => check(c, () => pageOf(c.url), written));
});

describe('Bundle → next page (nextPage)', () => {
  for (const c of ours('next')) test(c.name, () => check(c, () => nextPage(c.bundle), written));
});

describe('Bundle → planned pages (pagePlan)', () => {
  for (const c of ours('plans')) {
    test(c.name, () => check(c, () => pagePlan(c.bundle, ...(c.start === undefined ? [] : [c.start])), (plan) => plan && plan.map(written)));
  }
});
