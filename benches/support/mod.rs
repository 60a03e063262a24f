//! What the benchmarks share: tasks parked at a chosen depth of async fns.

use std::future::Future;
use std::time::Duration;

/// Tasks waiting at `depth` nested async fns: the depth makes
/// their stacks distinct (64 shapes), where they are not all the same.
pub(crate) fn wait_at(depth: usize) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        if depth == 0 {
            std::future::pending::<()>().await;
        } else {
            let notify = tokio::sync::Notify::new();
            let _ = tokio::time::timeout(Duration::from_secs(3600), async {
                if depth.is_multiple_of(2) {
                    notify.notified().await
                } else {
                    wait_at(depth - 1).await
                }
            })
            .await;
            wait_at(depth - 1).await;
        }
    })
}
