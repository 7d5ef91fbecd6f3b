//! Macros shared by the store's modules (declared first in `lib.rs`, so every module sees
//! them). They are macros rather than functions because they run on either backend's
//! transaction type.

/// Refuses a leader-only write (`Some(fence)`) unless the lease is still held by that node
/// under that epoch. PostgreSQL: the lease row is read `FOR SHARE`, so a takeover waits for
/// this transaction to end and cannot slip in between the check and the commit.
macro_rules! check_fence {
    ($store:expr, $tx:ident, $fence:expr, $pg:expr) => {{
        let fence: Option<&crate::fleet::Fence> = $fence;
        if let Some(fence) = fence {
            let err = $store.err();
            let sql = if $pg {
                "SELECT node_id, epoch FROM fleet_leader WHERE id = 1 FOR SHARE"
            } else {
                "SELECT node_id, epoch FROM fleet_leader WHERE id = 1"
            };
            let (holder, epoch): (Option<String>, i64) = sqlx::query_as(sql)
                .fetch_one(&mut *$tx)
                .await
                .map_err(|e| err.db("checking the leader lease", e))?;
            if holder.as_deref() != Some(fence.node_id.as_str()) || epoch != fence.epoch {
                return Err(crate::StoreError::Fenced(format!(
                    "node {} is no longer the fleet's leader (it held epoch {}; the lease is \
                     now epoch {epoch}, held by {}): only the leader runs controllers, so \
                     this write was refused and the new leader carries on",
                    fence.node_id,
                    fence.epoch,
                    holder.as_deref().unwrap_or("nobody")
                )));
            }
        }
    }};
}
