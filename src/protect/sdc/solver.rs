//! The solver behind the attacker's problems and the exact method's, and how independent
//! problems share the cores.

/// The attacker's LPs and integer programs: HiGHS with the `highs` feature (built from source:
/// needs cmake and libclang), else good_lp's pure-Rust microlp (see BENCHMARKS.md for both).
#[cfg(feature = "highs")]
pub(super) use good_lp::highs as SOLVER;
#[cfg(not(feature = "highs"))]
pub(super) use good_lp::microlp as SOLVER;

/// `f` over `items` cut into one slice per core (a single slice when there are fewer than
/// `at_least` items), the results in the items' order: for independent problems, each slice
/// solved on its own thread.
pub(super) fn by_core<T: Sync, R: Send, E: Send>(
    items: &[T],
    at_least: usize,
    f: impl Fn(&[T]) -> Result<Vec<R>, E> + Sync,
) -> Result<Vec<R>, E> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || items.len() < at_least.max(2) {
        return f(items);
    }
    let size = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items.chunks(size).map(|part| s.spawn(|| f(part))).collect();
        let mut all = Vec::with_capacity(items.len());
        for h in handles {
            all.extend(h.join().expect("a solver's thread panicked")?);
        }
        Ok(all)
    })
}
