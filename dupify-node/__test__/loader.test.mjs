// How the package finds LibTorch (loader.js): each case runs in a fresh Node process, since a
// process loads LibTorch once.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { pkgDir } from './helpers.mjs'

const require = createRequire(import.meta.url)
const { libtorch } = require('../index.js')

/** Runs `require('dupify')` in a child with `env` changes; returns its JSON report. */
function loadIn(env) {
  const script = `
    try {
      const d = require(${JSON.stringify(join(pkgDir, 'index.js'))})
      console.log(JSON.stringify({ ok: true, source: d.libtorch.source, dir: d.libtorch.dir,
        device: d.autoDevice() }))
    } catch (e) {
      console.log(JSON.stringify({ ok: false, code: e.code, message: e.message }))
    }`
  const childEnv = { ...process.env, ...env }
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k]
  const r = spawnSync(process.execPath, ['-e', script], { env: childEnv, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  return JSON.parse(r.stdout.trim().split('\n').pop())
}

test('this process found a LibTorch 2.11 and loaded its libraries', () => {
  assert.match(libtorch.version, /^2\.11(\.|$)/)
  assert.ok(existsSync(join(libtorch.lib, 'libtorch_cpu.so')))
  assert.deepEqual(libtorch.libraries.slice(0, 2), [
    join(libtorch.lib, 'libc10.so'),
    join(libtorch.lib, 'libtorch_cpu.so'),
  ])
})

test('DUPIFY_LIBTORCH names the LibTorch to use, and nothing else is tried', () => {
  const r = loadIn({ DUPIFY_LIBTORCH: libtorch.dir, DUPIFY_PYTHON: '/nonexistent/python' })
  assert.equal(r.ok, true, r.message)
  assert.equal(r.source, 'DUPIFY_LIBTORCH')
  assert.equal(r.dir, libtorch.dir)
  assert.match(r.device, /^(cpu|cuda:\d+)$/)

  const bad = loadIn({ DUPIFY_LIBTORCH: '/nonexistent/libtorch' })
  assert.equal(bad.ok, false)
  assert.equal(bad.code, 'libtorch_not_found')
  assert.match(bad.message, /DUPIFY_LIBTORCH=\/nonexistent\/libtorch holds no libtorch_cpu\.so/)
})

test('the torch package of a Python is found through DUPIFY_PYTHON', () => {
  const r = loadIn({ DUPIFY_LIBTORCH: undefined, DUPIFY_PYTHON: 'python3' })
  assert.equal(r.ok, true, r.message)
  assert.match(r.source, /^python \(/)
  assert.equal(r.dir, libtorch.dir)
})

test('no LibTorch anywhere: an error that says what to install', () => {
  const r = loadIn({ DUPIFY_LIBTORCH: undefined, DUPIFY_PYTHON: '/nonexistent/python' })
  assert.equal(r.ok, false)
  assert.equal(r.code, 'libtorch_not_found')
  assert.match(r.message, /no LibTorch 2\.11 found/)
  assert.match(r.message, /pip install torch==2\.11\.0/)
  assert.match(r.message, /DUPIFY_LIBTORCH/)
  assert.match(r.message, /\/nonexistent\/python: no torch package/)
})

test('a LibTorch of another version is refused by name', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dupify-libtorch-'))
  try {
    mkdirSync(join(dir, 'lib'))
    for (const f of ['libc10.so', 'libtorch_cpu.so']) {
      symlinkSync(join(libtorch.lib, f), join(dir, 'lib', f))
    }
    writeFileSync(join(dir, 'build-version'), '2.10.0+cpu\n')
    const r = loadIn({ DUPIFY_LIBTORCH: dir })
    assert.equal(r.ok, false)
    assert.equal(r.code, 'libtorch_version_mismatch')
    assert.match(r.message, /is version 2\.10\.0\+cpu; this build needs LibTorch 2\.11/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
