// Heavy calls run off the JS thread: the event loop keeps turning while a large batch runs.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Extractor } from '../index.mjs'
import { clothingPhotos } from './helpers.mjs'

test('a timer fires and progress arrives while a large batch is running', async () => {
  const x = new Extractor({ threads: 2 })
  // 120 images (the 40 committed photos three times): seconds of CPU work.
  const photos = clothingPhotos()
  assert.equal(photos.length, 40)
  const images = [...photos, ...photos, ...photos]
  let settled = false
  let timerFiredWhilePending = false
  const progress = []
  const pending = x.extractBatch(images, 'colors,silhouette,quality', {
    progress: (done, total) => progress.push({ done, total, settled }),
  })
  pending.then(() => { settled = true })
  // Scheduled after the call returned: it can only run if the call did not block the thread.
  setTimeout(() => { timerFiredWhilePending = !settled }, 1)
  const results = await pending
  assert.equal(results.length, images.length)
  assert.ok(results.every((r) => !(r instanceof Error)))
  assert.ok(timerFiredWhilePending, 'a 1 ms timer did not fire while the batch was running')
  // Progress callbacks ran on the JS thread before the promise settled.
  assert.equal(progress.length, images.length)
  assert.ok(progress.every((p) => p.total === images.length && !p.settled))
  assert.deepEqual(progress.map((p) => p.done), images.map((_, i) => i + 1))
})
