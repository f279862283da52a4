// The pretrained EfficientNet-Lite2 through the Node addon: the default model resolver, what
// the model is, embeddings, its trained category head, and a clear error for text.
// Needs weights/real/efficientnet-lite2 (scripts/setup.sh); fails, never skips, without it.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { defaultModelDir, Extractor } from '../index.mjs'
import { clothingPhotos, rejectsWithCode, repoRoot } from './helpers.mjs'

const lite2 = join(repoRoot, 'weights', 'real', 'efficientnet-lite2')
let x

before(() => {
  assert.ok(existsSync(join(lite2, 'model.safetensors')), `${lite2} missing: run scripts/setup.sh`)
  x = new Extractor({ modelDir: lite2, device: 'cpu', threads: 2 })
})

test('the default model is the pretrained encoder when no CLIP is installed', () => {
  const clip = join(repoRoot, 'weights', 'real', 'clip-vit-base-patch32')
  const want = existsSync(join(clip, 'model.safetensors')) ? clip : lite2
  assert.equal(defaultModelDir(repoRoot), want)
})

test('modelInfo, embedding, category head, and no text tower', async () => {
  const info = await x.modelInfo()
  assert.equal(info.architecture, 'efficientnet_lite')
  assert.equal(info.dimensions, 1280)
  assert.equal(info.has_text_tower, false)
  const photo = clothingPhotos()[0]
  const f = await x.extract(photo, 'embed,attributes')
  assert.ok(f.embedding instanceof Float32Array)
  assert.equal(f.embedding.length, 1280)
  assert.equal(f.model, info.content_hash)
  assert.deepEqual(f.attributes.attributes.map((a) => a.attribute), ['category'])
  assert.equal(f.attributes.attributes[0].head, 'linear')
  await rejectsWithCode(x.embedText('a red dress'), 'not_available')
})
