//! Progress on stderr for long reads, on a terminal only.

/// Rows and bytes read so far, shared by the chunk readers and the progress display, and what
/// the clamps cut.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) rows: std::sync::atomic::AtomicU64,
    pub(super) bytes: std::sync::atomic::AtomicU64,
    pub(super) done: std::sync::atomic::AtomicBool,
    /// Per table of the layout: values read below its clamp, and above (sums only).
    pub(super) clamped: Vec<[std::sync::atomic::AtomicU64; 2]>,
}

impl Counters {
    pub(super) fn new(tables: usize) -> Counters {
        Counters {
            clamped: (0..tables).map(|_| Default::default()).collect(),
            ..Counters::default()
        }
    }

    /// What the clamps cut, per table: `[below, above]`.
    pub(super) fn clamped(&self) -> Vec<[u64; 2]> {
        use std::sync::atomic::Ordering::Relaxed;
        self.clamped
            .iter()
            .map(|[lo, hi]| [lo.load(Relaxed), hi.load(Relaxed)])
            .collect()
    }
}

/// Draws progress on stderr until `counters.done` (unpark the thread after setting it), starting
/// only after a second so short reads stay silent; indicatif draws nothing when stderr is not a
/// terminal.
fn show_progress(counters: &Counters, total: u64, name: &str) {
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::{Duration, Instant};
    let start = Instant::now();
    let mut bar: Option<indicatif::ProgressBar> = None;
    while !counters.done.load(Relaxed) {
        std::thread::park_timeout(Duration::from_millis(100));
        if bar.is_none() && start.elapsed() >= Duration::from_secs(1) {
            let b = indicatif::ProgressBar::with_draw_target(
                Some(total),
                indicatif::ProgressDrawTarget::stderr(),
            );
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar = Some(b);
        }
        if let Some(b) = &bar {
            b.set_position(counters.bytes.load(Relaxed).min(total));
            b.set_message(format!("{name}: {} rows", counters.rows.load(Relaxed)));
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}

/// Runs `work` on this thread while progress is drawn (when `show`) on another, until it is done.
pub(super) fn with_progress<T>(
    show: bool,
    counters: &Counters,
    total: u64,
    name: &str,
    work: impl FnOnce() -> T,
) -> T {
    std::thread::scope(|s| {
        let progress = show.then(|| s.spawn(|| show_progress(counters, total, name)));
        let _stop = Stop(counters, progress.as_ref().map(|p| p.thread()));
        work()
    })
}

/// Stops the progress display when dropped: when the work returns, and also when it panics (the
/// scope waits for the display's thread before the panic goes on, which without this would be
/// forever: a bug would hang an unattended run instead of ending it with its internal-error
/// exit code).
struct Stop<'a>(&'a Counters, Option<&'a std::thread::Thread>);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0
            .done
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.1 {
            thread.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a reader's panic (a bug) hung the read, the scope waiting for a display that
    /// was only told to stop when the work returned. The panic must come through, promptly.
    #[test]
    fn a_panic_in_the_work_stops_the_progress_display() {
        let (sent, got) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let counters = Counters::new(0);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                with_progress(true, &counters, 1, "in.csv", || panic!("a bug"))
            }));
            sent.send(result.is_err()).unwrap();
        });
        let panicked = got.recv_timeout(std::time::Duration::from_secs(30));
        assert_eq!(panicked, Ok(true), "the read hung or did not panic");
    }
}
