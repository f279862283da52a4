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

test('index.d.ts declares every export and the data types it refers to', async () => {
  const { readFileSync } = await import('node:fs')
  const dts = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8')
  for (const name of Object.keys(cjs)) {
    assert.match(dts, new RegExp(`export declare (class|function|const) ${name}\\b`), name)
  }
  // Every capitalised type named in a generated signature is declared in the header.
  const code = dts.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '')
  const used = new Set([...code.matchAll(/\b(?:Promise<|: |\| )([A-Z][A-Za-z0-9]+)/g)].map((m) => m[1]))
  const builtins = new Set(['Promise', 'Float32Array', 'Uint8Array', 'ArrayBuffer', 'Buffer',
    'Array', 'Record', 'Partial', 'Error'])
  for (const t of used) {
    if (builtins.has(t)) continue
    assert.match(dts, new RegExp(`export (declare class|interface|type) ${t}\\b`), t)
  }
})

test('the ErrorCode union of the typings is exactly the Rust table of hosted codes', async () => {
  const { readFileSync } = await import('node:fs')
  const table = cjs.errorCodes()
  const codes = table.map((c) => c.code)
  assert.equal(new Set(codes).size, codes.length, 'a code twice in the table')
  for (const c of table) {
    assert.equal(typeof c.http_status, 'number', c.code)
    assert.equal(c.http_status >= 400 && c.http_status < 600, true, c.code)
    assert.equal(typeof c.meaning, 'string', c.code)
  }
  const dts = readFileSync(new URL('../types.d.ts', import.meta.url), 'utf8')
  const union = dts.match(/export type ErrorCode =([^/]*?)\n\/\*\*/)
  assert.ok(union, 'types.d.ts declares the ErrorCode union')
  const declared = [...union[1].matchAll(/'([a-z0-9_]+)'/g)].map((m) => m[1])
  assert.deepEqual([...declared].sort(), [...codes].sort())
})
