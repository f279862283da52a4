import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import esm, * as named from '../index.mjs'

const require = createRequire(import.meta.url)
const cjs = require('../index.js')

test('the addon loads from CommonJS and ESM and reports a device', () => {
  assert.match(cjs.autoDevice(), /^(cpu|cuda:\d+)$/)
  assert.equal(esm.autoDevice(), cjs.autoDevice())
  const r = named.deviceReport()
  assert.equal(r.auto_device, cjs.autoDevice())
  assert.equal(typeof r.cuda_available, 'boolean')
  assert.equal(r.cuda_device_count >= 0, true)
})

test('ESM named exports are the CommonJS exports', () => {
  for (const name of ['Extractor', 'CancelToken', 'Catalog', 'KeyStore', 'Principal',
    'autoDevice', 'deviceReport', 'rateLimitHeaderPairs']) {
    assert.equal(typeof cjs[name], 'function', name)
    assert.equal(named[name], cjs[name], name)
  }
})
