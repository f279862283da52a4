// Finds a LibTorch 2.11, loads it, then loads the native addon for this platform.
//
// The addon links LibTorch but carries no path to it: it is installed on machines where
// LibTorch lives wherever the user put it. Places tried, in order:
//
//   1. DUPIFY_LIBTORCH: a LibTorch directory (the one holding lib/libtorch_cpu.so; an
//      unpacked LibTorch zip or a Python `torch` package directory). When set it is the only
//      place tried: a wrong value is an error, never silently replaced by another LibTorch.
//   2. The `torch` package of the Python on PATH (DUPIFY_PYTHON, else python3, else python),
//      as the pip module does: `pip install torch==2.11.0`.
//   3. A LibTorch unpacked next to this package: <package dir>/libtorch/.
//
// Its libraries are loaded (libc10, libtorch_cpu, then libtorch_cuda when that LibTorch has
// it) by the small `loader` addon; the dynamic linker then satisfies the main addon's
// dependencies with them, so the process holds exactly that one LibTorch.
'use strict'

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

/** The LibTorch minor series the addon was built against (tch 0.24 ↔ LibTorch 2.11). */
const LIBTORCH_SERIES = '2.11'

/** napi-rs platform names: `<platform>-<arch>[-<abi>]`, e.g. `linux-x64-gnu`. */
function platformName() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const report = process.report && process.report.getReport()
    const glibc = report && report.header && report.header.glibcVersionRuntime
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`
  }
  return `${platform}-${arch}`
}

function libDirOf(dir) {
  for (const candidate of [path.join(dir, 'lib'), dir]) {
    if (fs.existsSync(path.join(candidate, 'libtorch_cpu.so'))) return candidate
  }
  return null
}

/** The version a LibTorch directory declares: a zip's `build-version`, or a torch package's
 * `version.py`. */
function versionOf(dir) {
  try {
    return fs.readFileSync(path.join(dir, 'build-version'), 'utf8').trim()
  } catch {}
  try {
    const m = /__version__\s*=\s*['"]([^'"]+)['"]/.exec(
      fs.readFileSync(path.join(dir, 'version.py'), 'utf8'),
    )
    if (m) return m[1]
  } catch {}
  return null
}

/** Asks a Python for its `torch` package without importing it (fast, no side effects). */
function torchOfPython(python) {
  const script =
    'import importlib.util, json, os\n' +
    's = importlib.util.find_spec("torch")\n' +
    'print(json.dumps(os.path.dirname(s.origin) if s and s.origin else None))\n'
  try {
    const out = execFileSync(python, ['-c', script], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 30000,
    })
    return JSON.parse(out.trim())
  } catch {
    return null
  }
}

function candidates(tried) {
  const explicit = process.env.DUPIFY_LIBTORCH
  if (explicit) {
    tried.push(`DUPIFY_LIBTORCH=${explicit}`)
    return [{ dir: path.resolve(explicit), source: 'DUPIFY_LIBTORCH', explicit: true }]
  }
  const found = []
  const pythons = process.env.DUPIFY_PYTHON ? [process.env.DUPIFY_PYTHON] : ['python3', 'python']
  for (const python of pythons) {
    const dir = torchOfPython(python)
    tried.push(`${python}: ${dir ? dir : 'no torch package (or no such command)'}`)
    if (dir) {
      found.push({ dir, source: `python (${python})` })
      break
    }
  }
  const bundled = path.join(__dirname, 'libtorch')
  tried.push(`${bundled}: ${fs.existsSync(bundled) ? 'present' : 'absent'}`)
  found.push({ dir: bundled, source: 'next to the package' })
  return found
}

function loadError(message, code) {
  const err = new Error(message)
  err.code = code
  return err
}

function findLibTorch() {
  const tried = []
  for (const c of candidates(tried)) {
    const lib = libDirOf(c.dir)
    if (!lib) {
      if (c.explicit) {
        throw loadError(
          `dupify: DUPIFY_LIBTORCH=${c.dir} holds no libtorch_cpu.so (in it or in its lib/); ` +
            `point it at a LibTorch ${LIBTORCH_SERIES} directory`,
          'libtorch_not_found',
        )
      }
      continue
    }
    const version = versionOf(c.dir)
    if (version && !(version === LIBTORCH_SERIES || version.startsWith(`${LIBTORCH_SERIES}.`))) {
      throw loadError(
        `dupify: the LibTorch at ${c.dir} (from ${c.source}) is version ${version}; this ` +
          `build needs LibTorch ${LIBTORCH_SERIES} (pip install torch==${LIBTORCH_SERIES}.0)`,
        'libtorch_version_mismatch',
      )
    }
    return { dir: c.dir, lib, version, source: c.source }
  }
  throw loadError(
    `dupify: no LibTorch ${LIBTORCH_SERIES} found. Install it in one of these ways:\n` +
      `  - pip install torch==${LIBTORCH_SERIES}.0   (into the Python on PATH, or set ` +
      `DUPIFY_PYTHON to that Python)\n` +
      `  - set DUPIFY_LIBTORCH to an unpacked LibTorch ${LIBTORCH_SERIES} (the directory ` +
      `with lib/libtorch_cpu.so)\n` +
      `  - unpack LibTorch ${LIBTORCH_SERIES} into ${path.join(__dirname, 'libtorch')}\n` +
      `Tried: ${tried.join('; ')}`,
    'libtorch_not_found',
  )
}

/** Requires `<name>.<platform>.node` next to this file, else from the per-platform package
 * `@dupify/<platform>` (napi-rs's layout for published binaries). */
function requireNative(name, platform) {
  const local = path.join(__dirname, `${name}.${platform}.node`)
  if (fs.existsSync(local)) return require(local)
  try {
    return require(`@dupify/${platform}/${name}.${platform}.node`)
  } catch (e) {
    throw loadError(
      `dupify: no ${name} binary for ${platform} (looked for ${local} and the package ` +
        `@dupify/${platform}): ${e.message}`,
      'unsupported_platform',
    )
  }
}

let loaded = null

/** Loads LibTorch and the addon once per process; returns `{ binding, libtorch }`. */
function load() {
  if (loaded) return loaded
  const platform = platformName()
  if (!platform.startsWith('linux-')) {
    throw loadError(`dupify: no build for ${platform} yet (Linux x86_64 glibc only)`, 'unsupported_platform')
  }
  const libtorch = findLibTorch()
  const libs = ['libc10.so', 'libtorch_cpu.so', 'libtorch_cuda.so', 'libtorch.so']
    .map((f) => path.join(libtorch.lib, f))
    .filter((f, i) => i < 2 || fs.existsSync(f))
  const { preload } = requireNative('loader', platform)
  try {
    preload(libs)
  } catch (e) {
    throw loadError(`dupify: could not load LibTorch from ${libtorch.lib}: ${e.message}`, 'libtorch_load_failed')
  }
  const binding = requireNative('dupify', platform)
  loaded = { binding, libtorch: Object.freeze({ ...libtorch, libraries: libs }) }
  return loaded
}

module.exports = { load, platformName, LIBTORCH_SERIES }
