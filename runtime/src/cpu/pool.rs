//! A persistent pool of worker threads for the CPU backend. One process-wide pool
//! ([`Pool::global`]) with one thread per available core (`KILN_NUM_THREADS`
//! overrides), the calling thread included. [`Pool::run`] executes `tasks` numbered
//! tasks with dynamic scheduling and returns when all are done. Workers spin briefly
//! after a job before sleeping, so the short back-to-back kernels of a train step do
//! not pay a wake-up each. If another thread is already using the pool, the call runs
//! its tasks inline instead of waiting. Knows nothing of kernels.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How long an idle worker spins before it sleeps on the condition variable.
const SPIN: Duration = Duration::from_micros(200);

type TaskFn = dyn Fn(usize) + Sync;

struct Job {
    /// Valid while the job's `run` call is active; only dereferenced for claimed task
    /// indices below `tasks`, and `run` returns only after all of those finished.
    f: *const TaskFn,
    tasks: usize,
    next: AtomicUsize,
    completed: AtomicUsize,
    panicked: AtomicBool,
}

// SAFETY: `f` points to a `Sync` closure; see the field comment for its lifetime.
unsafe impl Send for Job {}
unsafe impl Sync for Job {}

impl Job {
    /// Claim and run tasks until none are left.
    fn work(&self) {
        loop {
            let t = self.next.fetch_add(1, Ordering::AcqRel);
            if t >= self.tasks {
                return;
            }
            // SAFETY: t < tasks, so the `run` call that owns `f` is still waiting.
            let f = unsafe { &*self.f };
            if catch_unwind(AssertUnwindSafe(|| f(t))).is_err() {
                self.panicked.store(true, Ordering::Release);
            }
            self.completed.fetch_add(1, Ordering::AcqRel);
        }
    }
}

struct State {
    epoch: u64,
    job: Option<Arc<Job>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    epoch: AtomicU64,
}

/// A task failed by panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskPanicked;

pub struct Pool {
    threads: usize,
    shared: Arc<Shared>,
    busy: Mutex<()>,
}

fn worker(shared: Arc<Shared>) {
    let mut seen = 0u64;
    loop {
        let start = Instant::now();
        while shared.epoch.load(Ordering::Acquire) == seen && start.elapsed() < SPIN {
            std::hint::spin_loop();
        }
        let job = {
            let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            while st.epoch == seen {
                st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            seen = st.epoch;
            st.job.clone()
        };
        if let Some(job) = job {
            job.work();
        }
    }
}

/// Threads to use: `KILN_NUM_THREADS` if set to a positive number, else all cores.
pub fn configured_threads() -> usize {
    std::env::var("KILN_NUM_THREADS")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()))
}

impl Pool {
    /// A pool of `threads` participants (the caller plus `threads - 1` workers).
    pub fn new(threads: usize) -> Pool {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State { epoch: 0, job: None }),
            wake: Condvar::new(),
            epoch: AtomicU64::new(0),
        });
        for i in 1..threads {
            let s = Arc::clone(&shared);
            let spawned = thread::Builder::new()
                .name(format!("kiln-worker-{i}"))
                .spawn(move || worker(s));
            if spawned.is_err() {
                return Pool {
                    threads: i,
                    shared,
                    busy: Mutex::new(()),
                };
            }
        }
        Pool {
            threads,
            shared,
            busy: Mutex::new(()),
        }
    }

    /// The process-wide pool (created on first use).
    pub fn global() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(|| Pool::new(configured_threads()))
    }

    /// Number of participants (workers plus the caller).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Run `f(0) .. f(tasks - 1)`, spread over the pool; returns when all finished.
    pub fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) -> Result<(), TaskPanicked> {
        if tasks == 0 {
            return Ok(());
        }
        let guard = if self.threads > 1 && tasks > 1 {
            self.busy.try_lock().ok()
        } else {
            None
        };
        let Some(_guard) = guard else {
            // Single-threaded: inline, in order.
            for t in 0..tasks {
                if catch_unwind(AssertUnwindSafe(|| f(t))).is_err() {
                    return Err(TaskPanicked);
                }
            }
            return Ok(());
        };
        // SAFETY: the lifetime is erased; `Job::f` is only used while this call waits.
        let f_static: *const TaskFn = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static TaskFn>(f) };
        let job = Arc::new(Job {
            f: f_static,
            tasks,
            next: AtomicUsize::new(0),
            completed: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
        });
        {
            let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            st.epoch += 1;
            st.job = Some(Arc::clone(&job));
            self.shared.epoch.store(st.epoch, Ordering::Release);
        }
        self.shared.wake.notify_all();
        job.work();
        let start = Instant::now();
        while job.completed.load(Ordering::Acquire) < tasks {
            if start.elapsed() < SPIN {
                std::hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
        {
            let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            st.job = None;
        }
        if job.panicked.load(Ordering::Acquire) {
            Err(TaskPanicked)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once() {
        let pool = Pool::new(3);
        for tasks in [0usize, 1, 2, 7, 100] {
            let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
            pool.run(tasks, &|t| {
                hits[t].fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1), "tasks={tasks}");
        }
    }

    #[test]
    fn panics_are_reported_and_the_pool_survives() {
        let pool = Pool::new(2);
        let r = pool.run(4, &|t| {
            if t == 2 {
                panic!("boom");
            }
        });
        assert_eq!(r, Err(TaskPanicked));
        let count = AtomicUsize::new(0);
        pool.run(5, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(count.load(Ordering::Relaxed), 5);
    }
}
