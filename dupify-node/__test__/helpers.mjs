// Shared fixtures and the Rust reference for the Node binding's tests.
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import assert from 'node:assert/strict'

export const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..')
export const repoRoot = join(pkgDir, '..')
export const assets = join(repoRoot, 'dupify-core', 'tests', 'assets')
export const clothing = join(assets, 'clothing')

/** The seeded tiny CLIP test model; fails loudly when it has not been generated. */
export function modelDir() {
  const dir = join(repoRoot, 'weights', 'test', 'clip', 'tiny')
  if (!existsSync(join(dir, 'model.safetensors'))) {
    throw new Error(
      `test model missing at ${dir}: run scripts/setup.sh (it generates weights/test/)`,
    )
  }
  return dir
}

/** Every committed clothing photo (40: 4 per category), sorted. */
export function clothingPhotos() {
  const out = []
  for (const cat of readdirSync(clothing, { withFileTypes: true })) {
    if (!cat.isDirectory()) continue
    for (const f of readdirSync(join(clothing, cat.name)).sort()) {
      if (/\.(jpe?g|png|webp)$/i.test(f)) out.push(join(clothing, cat.name, f))
    }
  }
  return out.sort()
}

/**
 * The Rust API's own features for `files` (the `features_json` example, CPU, default
 * options), parsed from its JSON.
 */
export function rustFeatures(ops, files) {
  const out = execFileSync(
    'cargo',
    ['run', '-q', '-p', 'dupify-examples', '--example', 'features_json', '--', modelDir(), ops, ...files],
    { cwd: repoRoot, encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'inherit'] },
  )
  return JSON.parse(out)
}

/**
 * A JS result in JSON form: Float32Array → number[], Buffer → base64 (as the core's JSON
 * writes the cut-out), `processing_time_ms` dropped (it is the one field that differs run to
 * run).
 */
export function plain(v, key) {
  if (key === 'processing_time_ms') return undefined
  if (Buffer.isBuffer(v)) return v.toString('base64')
  if (v instanceof Float32Array) return Array.from(v)
  if (Array.isArray(v)) return v.map((x) => plain(x))
  if (v && typeof v === 'object') {
    const o = {}
    for (const [k, x] of Object.entries(v)) {
      const p = plain(x, k)
      if (p !== undefined) o[k] = p
    }
    return o
  }
  return v
}

/**
 * Asserts that a JS result equals the Rust reference JSON exactly at f32 precision: every
 * number compared after `Math.fround` (the core's floats are f32; JSON prints their shortest
 * decimal, JS holds them widened to f64), everything else strictly.
 */
export function assertSameAsRust(js, ref, path = '$') {
  compare(plain(js), plain(ref), path, 0)
}

/**
 * The core's contract between a batched and a one-by-one extraction (its own test,
 * `batch_results_equal_single_results`): model outputs — the CLIP embedding and the attribute
 * probabilities computed from it — agree within 1e-5 (a different batch size runs different
 * GEMM kernels); every other value is identical.
 */
export const BATCH_VS_SINGLE = 1e-5

/** `assertSameAsRust`, allowing `BATCH_VS_SINGLE` on model outputs only. */
export function assertSameUpToBatching(a, b, path = '$') {
  compare(plain(a), plain(b), path, BATCH_VS_SINGLE)
}

function isModelOutput(path) {
  return /^[^.]*\.embedding\[\d+\]$/.test(path) ||
    (path.includes('.attributes.') && path.endsWith('.probability'))
}

function compare(a, b, path, modelTol) {
  if (typeof b === 'number') {
    assert.equal(typeof a, 'number', `${path}: expected a number, got ${typeof a}`)
    if (modelTol > 0 && isModelOutput(path)) {
      assert.ok(Math.abs(a - b) <= modelTol, `${path}: |${a} - ${b}| > ${modelTol}`)
      return
    }
    assert.equal(Math.fround(a), Math.fround(b), `${path}: ${a} != ${b}`)
    return
  }
  if (Array.isArray(b)) {
    assert.ok(Array.isArray(a), `${path}: expected an array`)
    assert.equal(a.length, b.length, `${path}: length`)
    b.forEach((x, i) => compare(a[i], x, `${path}[${i}]`, modelTol))
    return
  }
  if (b && typeof b === 'object') {
    assert.ok(a && typeof a === 'object', `${path}: expected an object`)
    assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort(), `${path}: keys`)
    for (const k of Object.keys(b)) compare(a[k], b[k], `${path}.${k}`, modelTol)
    return
  }
  assert.equal(a, b, path)
}

/** Asserts that `promise` rejects with an Error whose `.code` is `code`. */
export async function rejectsWithCode(promise, code) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof Error, `not an Error: ${e}`)
    assert.equal(e.code, code, `code of: ${e.message}`)
    assert.equal(typeof e.status, 'number')
    return true
  })
}

/** Asserts that `fn()` throws an Error whose `.code` is `code`. */
export function throwsWithCode(fn, code) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof Error, `not an Error: ${e}`)
    assert.equal(e.code, code, `code of: ${e.message}`)
    return true
  })
}
