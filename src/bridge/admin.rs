//! Administrators' use cases on the outbox.

use super::{BridgeResult, Resources};
use crate::store::SqlStore;

/// Puts dead jobs back in the queue, one (`id`) or all of a connector, each rebuilt from the
/// resource's current state (see [`Resources::resync`]) with its age started afresh.
pub fn retry_dead(
    store: &SqlStore,
    resources: &Resources,
    id: Option<i64>,
    connector: Option<&str>,
) -> BridgeResult<usize> {
    let now = crate::clock::format_time(chrono::Utc::now());
    let resync = |job: &crate::store::outbox::JobRow| match resources.resync(job) {
        Ok(fresh) => fresh,
        Err(e) => {
            log::warn!(
                "job {}: cannot rebuild it from the current state ({e}); retried as it was",
                job.id
            );
            None
        }
    };
    let n = store.retry_dead(id, connector, &now, &resync)?;
    resources.wake_outbox();
    Ok(n)
}
