import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import esm from '../index.mjs'

const require = createRequire(import.meta.url)
const cjs = require('../index.js')

test('the addon loads from CommonJS and ESM and reports a device', () => {
  assert.match(cjs.autoDevice(), /^(cpu|cuda:\d+)$/)
  assert.equal(esm.autoDevice(), cjs.autoDevice())
})
