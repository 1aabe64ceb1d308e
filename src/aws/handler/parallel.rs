//! Maps a batch on every core the environment gives (Lambda: one vCPU per 1,769 MB of memory),
//! keeping the batch order. Small batches, and a single core, stay on the calling thread.

use std::num::NonZeroUsize;

/// Below this many items a batch is not split (thread start-up would cost more than it saves).
const MIN_ITEMS_PER_THREAD: usize = 256;

/// How many threads a batch of `items` is spread over.
pub fn threads_for(items: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    cores.min(items / MIN_ITEMS_PER_THREAD).max(1)
}

/// `items.into_iter().map(f).collect()`, on `threads` threads (contiguous runs of the batch, the
/// first on the calling thread). The current tracing span (the invocation's request id) is
/// entered on every thread, so each log line keeps it.
pub fn map_in_order<T: Send, U: Send>(
    mut items: Vec<T>,
    threads: usize,
    f: impl Fn(T) -> U + Sync,
) -> Vec<U> {
    if threads <= 1 || items.len() < 2 {
        return items.into_iter().map(f).collect();
    }
    let per = items.len().div_ceil(threads);
    let mut runs = Vec::with_capacity(threads);
    while items.len() > per {
        runs.push(items.split_off(items.len() - per));
    }
    runs.reverse();
    let span = tracing::Span::current();
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .into_iter()
            .map(|run| {
                let span = span.clone();
                scope.spawn(move || {
                    let _in_span = span.enter();
                    run.into_iter().map(f).collect::<Vec<U>>()
                })
            })
            .collect();
        let mut out: Vec<U> = items.into_iter().map(f).collect();
        for handle in handles {
            match handle.join() {
                Ok(part) => out.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_is_kept_for_any_thread_count() {
        let items: Vec<u32> = (0..1001).collect();
        let expected: Vec<u64> = items.iter().map(|&i| u64::from(i) * 3).collect();
        for threads in [1, 2, 3, 7, 64] {
            let out = map_in_order(items.clone(), threads, |i| u64::from(i) * 3);
            assert_eq!(out, expected, "{threads} threads");
        }
        assert!(map_in_order(Vec::<u32>::new(), 4, |i| i).is_empty());
    }

    #[test]
    fn work_runs_on_more_than_one_thread_when_asked() {
        let ids = map_in_order((0..64).collect::<Vec<u32>>(), 4, |_| {
            std::thread::sleep(std::time::Duration::from_millis(1));
            std::thread::current().id()
        });
        let distinct: std::collections::HashSet<_> = ids.into_iter().collect();
        assert_eq!(distinct.len(), 4);
        assert_eq!(threads_for(10), 1);
    }
}
