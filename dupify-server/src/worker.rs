//! The catalog queue's worker: products uploaded with only an `image_url` are stored at once
//! and queued in the catalog database (`Catalog::enqueue`); this task fetches each image,
//! extracts its features and completes the job, or records why it failed. Because the queue
//! is a table of the catalog database, a restart resumes whatever was pending: the worker
//! starts with the server and picks the queue up where the last process left it. Jobs are
//! claimed, not just read, so the workers of several servers sharing one catalog never fetch
//! the same image; a dead server's claims end with their lease.
//!
//! Fetches take a slot of the server's global `max_fetches` (waiting for one rather than
//! failing: queued work has no caller to answer 429 to) and run, like the extraction, on the
//! blocking pool, never on the async workers; at most [`JOBS_AT_ONCE`] jobs run together, so
//! queued uploads never crowd out interactive requests for the extractor's threads.

use std::time::Duration;

use dupify_core::catalog::{IngestJob, ProductFeatures};
use dupify_core::ImageInput;

use crate::handlers::catalog_features;
use crate::AppState;

/// Jobs fetched and extracted at once.
pub(crate) const JOBS_AT_ONCE: usize = 4;

/// How long a claimed job stays this worker's (`Catalog::claim_jobs`): far longer than a
/// fetch (`ServeConfig::fetch_timeout`, 8 s by default) plus an extraction, so a live worker
/// never loses a job to another server's worker, while a job whose server died is picked up
/// by another within minutes.
const JOB_LEASE: Duration = Duration::from_secs(300);

/// How often an idle worker looks at the queue without being woken: another process sharing
/// the catalog database may have queued work.
const IDLE_POLL: Duration = Duration::from_secs(5);

/// Runs for the life of the server.
pub(crate) async fn run(state: AppState) {
    loop {
        let st = state.clone();
        let jobs =
            tokio::task::spawn_blocking(move || st.catalog().claim_jobs(JOBS_AT_ONCE, JOB_LEASE))
                .await
                .unwrap_or_else(|e| Err(dupify_core::Error::Internal(e.to_string())));
        let jobs = match jobs {
            Ok(j) => j,
            Err(e) => {
                eprintln!("dupify-server: reading the catalog queue: {e}");
                tokio::time::sleep(IDLE_POLL).await;
                continue;
            }
        };
        if jobs.is_empty() {
            tokio::select! {
                _ = state.inner.queue_wake.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
            continue;
        }
        let mut running = tokio::task::JoinSet::new();
        for job in jobs {
            running.spawn(process(state.clone(), job));
        }
        while running.join_next().await.is_some() {}
    }
}

/// Fetches, extracts and completes one job; any failure is recorded on it.
async fn process(state: AppState, job: IngestJob) {
    let Ok(slot) = std::sync::Arc::clone(&state.inner.fetches)
        .acquire_owned()
        .await
    else {
        return; // the semaphore is never closed
    };
    let mut limits = state.extractor().config().limits;
    limits.url.total_timeout = limits.url.total_timeout.min(state.config().fetch_timeout);
    let st = state.clone();
    let done = tokio::task::spawn_blocking(move || {
        let fetched = dupify_core::input::fetch_image_url(&job.image_url, &limits);
        drop(slot);
        let outcome = fetched.and_then(|bytes| {
            let f = catalog_features(st.extractor(), &ImageInput::Bytes(bytes))?;
            st.catalog()
                .complete_job(&job, ProductFeatures::from(&f), Some(f.content_hash))
        });
        if let Err(e) = outcome {
            if let Err(e2) = st.catalog().fail_job(&job, &e) {
                eprintln!(
                    "dupify-server: recording the failure of queued product {}: {e2}",
                    job.product_id
                );
            }
        }
    })
    .await;
    if let Err(e) = done {
        eprintln!("dupify-server: a queued product's job panicked: {e}");
    }
}
