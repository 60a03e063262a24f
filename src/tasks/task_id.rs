//! tokio task ids as numbers: the one thing every part of the crate that
//! keys on tasks (the hooks' registry, dumps, the unwatched-task count)
//! shares, so it sits below all of them.

use std::hash::{Hash, Hasher};

/// tokio's task ids are process-wide and unique, but their numeric value is
/// not public: `Id` derives `Hash` over a `NonZeroU64`, which feeds that
/// number to `Hasher::write_u64`, so a hasher that keeps it recovers it.
pub(crate) fn raw_id(id: tokio::task::Id) -> u64 {
    #[derive(Default)]
    struct KeepU64(u64);
    impl Hasher for KeepU64 {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            // Not reached for `Id`; fold anything else in deterministically.
            for byte in bytes {
                self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
            }
        }
        fn write_u64(&mut self, value: u64) {
            self.0 = value;
        }
    }
    let mut hasher = KeepU64::default();
    id.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_id_matches_the_displayed_id() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let handle = runtime.spawn(async {});
        let id = handle.id();
        assert_eq!(raw_id(id).to_string(), id.to_string());
    }
}
