//! [`prefetch`]: the library's one `unsafe` call, a cache hint.
//!
//! A batched lookup knows the addresses of all of its keys' next reads before it needs their
//! contents. Plain loads of them hold the processor's reorder window until memory answers (about
//! a hundred nanoseconds for a line of a million-range index), so only a few keys' reads are in
//! flight at once; a prefetch retires at once and lets every key's read be in flight together.
//! Measured in `benches/engine.rs` at a million ranges (see `lookup_batch`).

/// Asks the processor to bring the cache line holding `value` into its caches, without waiting
/// for it. Observably a no-op: it reads nothing the program sees and cannot fault.
#[inline(always)]
pub(super) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: `_mm_prefetch` is unsafe only because it is a `#[target_feature(enable = "sse")]`
    // function; SSE is part of the x86_64 baseline every x86_64 target enables. The instruction
    // is a hint that never faults, on any address, and the pointer comes from a live reference.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

#[cfg(test)]
mod tests {
    use super::prefetch;
    use proptest::prelude::*;

    proptest! {
        /// A prefetch of any element (the first, the last, one past a line boundary, a
        /// zero-sized one) leaves every value as it was and returns.
        #[test]
        fn prefetch_changes_nothing(
            values in prop::collection::vec(any::<u64>(), 1..300),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 1..50),
        ) {
            let before = values.clone();
            for pick in &picks {
                prefetch(&values[pick.index(values.len())]);
            }
            prefetch(&values[0]);
            prefetch(&values[values.len() - 1]);
            prefetch(&());
            prefetch(&values);
            prop_assert_eq!(values, before);
        }
    }
}
