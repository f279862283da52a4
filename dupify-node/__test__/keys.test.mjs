// KeyStore: keys, authentication, scopes (the batch rule), rate limits, quotas, usage.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KeyStore, Principal, rateLimitHeaderPairs } from '../index.mjs'
import { rejectsWithCode, throwsWithCode } from './helpers.mjs'

const KEY = /^fe_(live|test)_[A-Za-z0-9]{32}$/

test('create, authenticate from either header, verify, principal fields', async () => {
  const store = KeyStore.openInMemory('pepper from a secret store')
  const { key, record } = await store.create({ name: 'Production', environment: 'live' })
  assert.match(key, KEY)
  assert.ok(key.startsWith('fe_live_'))
  assert.equal(record.name, 'Production')
  assert.equal(record.scopes, 'all')
  assert.equal(record.status, 'active')
  assert.deepEqual(record.limits, { per_minute: 10, monthly: 50 })
  assert.ok(!JSON.stringify(record).includes(key.slice(8)), 'the record must not hold the secret')
  assert.ok(record.preview.startsWith('fe_live_') && record.preview.endsWith(key.slice(-4)))

  const a = store.authenticate({ 'x-api-key': key })
  assert.ok(a instanceof Principal)
  assert.equal(a.keyId, record.id)
  assert.equal(a.lineageId, record.id)
  assert.equal(a.environment, 'live')
  const b = store.authenticate({ Authorization: `Bearer ${key}` })
  assert.deepEqual(b.toJSON(), a.toJSON())
  assert.equal(a.toJSON().scopes, 'all')
  assert.deepEqual(store.authenticate([['X-API-Key', key]]).toJSON(), a.toJSON())
  assert.deepEqual(store.verify(key).toJSON(), a.toJSON())

  const t = await store.create({ name: 'ci', environment: 'test' })
  assert.ok(t.key.startsWith('fe_test_'))
  assert.equal(store.verify(t.key).environment, 'test')
})

test('authentication failures carry the hosted codes and 401', () => {
  const store = KeyStore.openInMemory('pepper')
  throwsWithCode(() => store.authenticate({}), 'missing_api_key')
  throwsWithCode(() => store.authenticate({ 'x-api-key': 'nope' }), 'invalid_api_key')
  throwsWithCode(
    () => store.authenticate({ 'x-api-key': `fe_live_${'a'.repeat(32)}` }),
    'invalid_api_key',
  )
  throwsWithCode(() => store.authenticate({ 'x-api-key': ['a', 'b'] }), 'invalid_api_key')
  try {
    store.authenticate({})
  } catch (e) {
    assert.equal(e.status, 401)
  }
  throwsWithCode(() => store.authenticate(), 'missing_parameter')
  throwsWithCode(() => store.authenticate(42), 'invalid_parameter')
  throwsWithCode(() => store.verify(7), 'invalid_parameter')
  throwsWithCode(() => KeyStore.openInMemory(''), 'invalid_parameter')
  throwsWithCode(() => KeyStore.openInMemory(), 'missing_parameter')
  throwsWithCode(() => KeyStore.openInMemory('p', { flushEvery: 1 }), 'invalid_parameter')
})

test('scopes: a batch needs `batch` and the scope of every operation inside it', async () => {
  const store = KeyStore.openInMemory('pepper')
  const { key } = await store.create({ name: 'colors', environment: 'live', scopes: ['colors', 'batch'] })
  const p = store.authenticate({ 'x-api-key': key })
  assert.deepEqual(p.toJSON().scopes, ['colors', 'batch'])
  assert.equal(store.authorize(p, 'colors'), undefined)
  assert.equal(store.authorize(p, { batch: ['colors'] }), undefined)
  throwsWithCode(() => store.authorize(p, 'embed'), 'insufficient_scope')
  throwsWithCode(() => store.authorize(p, { batch: ['colors', 'embed'] }), 'insufficient_scope')
  throwsWithCode(() => store.authorize(p, 'teleport'), 'invalid_parameter')
  throwsWithCode(() => store.authorize({ keyId: 1 }, 'colors'), 'invalid_parameter')
  throwsWithCode(() => store.authorize(p), 'missing_parameter')
  await rejectsWithCode(store.create({ name: 'x', environment: 'live', scopes: ['fly'] }), 'invalid_parameter')
  await rejectsWithCode(store.create({ name: 'x', environment: 'prod' }), 'invalid_parameter')
  await rejectsWithCode(store.create({ environment: 'live' }), 'invalid_parameter')
  await rejectsWithCode(store.create(), 'missing_parameter')

  const usage = await store.usage(p.keyId)
  const today = Object.values(usage.daily)
  assert.equal(today.length, 1)
  assert.equal(today[0].by_scope.colors, 2)
  assert.equal(today[0].by_scope.batch, 1)
})

test('rate limits and quotas: decisions, headers, and coded errors with retryAfterSecs', async () => {
  const store = KeyStore.openInMemory('pepper')
  const { key } = await store.create({
    name: 'tight', environment: 'live', limits: { per_minute: 2, monthly: null },
  })
  const p = store.authenticate({ 'x-api-key': key })
  const first = store.checkRate(p)
  assert.equal(first.decision, 'allowed')
  assert.equal(first.headers.limit, 2)
  assert.equal(first.headers.remaining, 1)
  assert.equal(first.headers.monthly_limit, null)
  assert.deepEqual(rateLimitHeaderPairs(first.headers).map(([k]) => k),
    ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset'])
  assert.equal(rateLimitHeaderPairs(first.headers)[0][1], '2')
  assert.equal(store.enforceRate(p).remaining, 0)
  const denied = store.checkRate(p)
  assert.equal(denied.decision, 'rate_limited')
  assert.ok(denied.retry_after_secs >= 1)
  assert.throws(() => store.enforceRate(p), (e) => {
    assert.equal(e.code, 'rate_limit_exceeded')
    assert.equal(e.status, 429)
    assert.ok(e.retryAfterSecs >= 1)
    return true
  })

  const q = await store.create({ name: 'quota', environment: 'live', limits: { per_minute: 100, monthly: 1 } })
  const qp = store.verify(q.key)
  assert.equal(store.checkRate(qp).decision, 'allowed')
  const over = store.checkRate(qp)
  assert.equal(over.decision, 'quota_exceeded')
  assert.equal(over.used, 1)
  assert.equal(over.limit, 1)
  assert.throws(() => store.enforceRate(qp), (e) => e.code === 'quota_exceeded' && e.retryAfterSecs > 0)

  await store.setLimits(q.record.id, 'unlimited')
  assert.equal(store.checkRate(store.verify(q.key)).decision, 'allowed')
  assert.deepEqual((await store.get(q.record.id)).limits, { per_minute: 1000, monthly: null })
  await rejectsWithCode(store.setLimits(q.record.id, { per_minute: 0, monthly: null }), 'invalid_parameter')
  await rejectsWithCode(store.setLimits(q.record.id, 'platinum'), 'invalid_parameter')
  await rejectsWithCode(store.create({ name: 'z', environment: 'live', limits: { per_minute: 0, monthly: 5 } }), 'invalid_parameter')
})

test('revoke, regenerate, expiry, list, get, usage, flush, on-disk store', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dupify-keys-'))
  try {
    const path = join(dir, 'keys.db')
    const store = await KeyStore.open(path, Buffer.from('pepper bytes'))
    const a = await store.create({ name: 'a', environment: 'live' })
    const b = await store.create({ name: 'b', environment: 'live' })
    const gone = await store.create({ name: 'old', environment: 'live', expiresAt: 1_000_000 })
    throwsWithCode(() => store.verify(gone.key), 'expired_api_key')

    await store.revoke(a.record.id)
    throwsWithCode(() => store.verify(a.key), 'invalid_api_key')
    assert.equal((await store.get(a.record.id)).status, 'revoked')

    const nb = await store.regenerate(b.record.id)
    assert.notEqual(nb.key, b.key)
    throwsWithCode(() => store.verify(b.key), 'invalid_api_key')
    assert.equal(store.verify(nb.key).lineageId, b.record.id)
    assert.equal((await store.get(b.record.id)).replaced_by, nb.record.id)
    await rejectsWithCode(store.regenerate(b.record.id, -1), 'invalid_parameter')

    const listed = await store.list()
    assert.deepEqual(listed.map((r) => r.name).sort(), ['a', 'b', 'b', 'old'])
    await rejectsWithCode(store.get(9999), 'not_found')
    await rejectsWithCode(store.get('one'), 'invalid_parameter')
    await rejectsWithCode(store.revoke(), 'missing_parameter')

    const p = store.verify(nb.key)
    store.checkRate(p)
    store.authorize(p, 'embed')
    await store.flush()
    const reopened = await KeyStore.open(path, 'pepper bytes')
    assert.equal(reopened.verify(nb.key).keyId, nb.record.id)
    const usage = await reopened.usage(nb.record.id)
    const month = Object.values(usage.monthly)[0]
    assert.equal(month.requests, 1)
    assert.equal(month.by_scope.embed, 1)
    // Another pepper cannot verify the same keys.
    const wrong = await KeyStore.open(path, 'another pepper')
    throwsWithCode(() => wrong.verify(nb.key), 'invalid_api_key')
    await rejectsWithCode(KeyStore.open(join(dir, 'missing', 'dir', 'k.db'), 'p'), 'internal_error')
    await rejectsWithCode(KeyStore.open(path), 'missing_parameter')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('release gives a call back; shutdown hands back reserved quota, so a restart loses none', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dupify-keys-'))
  try {
    const path = join(dir, 'keys.db')
    const first = await KeyStore.open(path, 'pepper bytes')
    const k = await first.create({ name: 'q', environment: 'live', limits: { per_minute: 1000, monthly: 1000 } })
    const p = first.verify(k.key)
    for (let i = 0; i < 5; i++) assert.equal(first.checkRate(p).decision, 'allowed')
    first.release(p)
    throwsWithCode(() => first.release({}), 'invalid_parameter')
    await first.shutdown()
    const second = await KeyStore.open(path, 'pepper bytes')
    const p2 = second.verify(k.key)
    let admitted = 0
    while (second.checkRate(p2).decision === 'allowed') {
      admitted++
      assert.ok(admitted <= 1000)
    }
    assert.equal(admitted, 1000 - 4)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
