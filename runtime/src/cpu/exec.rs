//! Running a compiled kernel program on the CPU: kernels in order, each loop kernel's
//! flat outer range split into chunks over the worker pool when the work pays for the
//! split, matmuls through `matmul`, then the program's param/state updates. Owns the
//! splitting policy; memory lives in `buffers`, code in `jit`.

use kiln_compiler::kernel::{BufferId, Kernel, Program};

use super::buffers::Buffers;
use super::helpers::HelperTable;
use super::jit::{JitCode, JitKernel, JitProgram};
use super::matmul::run_matmul;
use super::pool::Pool;

/// Below this many estimated operations a kernel runs on the calling thread only.
const PARALLEL_MIN_WORK: usize = 64 * 1024;
/// Target operations per task when splitting.
const TASK_WORK: usize = 32 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskError {
    Panicked(String),
}

/// Everything a kernel call needs, shareable across worker threads.
pub struct RunCx<'a> {
    bufs: usize,
    scalars: usize,
    helpers: usize,
    buffers: &'a Buffers,
    pub pool: &'a Pool,
}

impl RunCx<'_> {
    pub fn ptr(&self, id: BufferId) -> *mut u8 {
        self.buffers.ptr(id)
    }

    /// Call `k` on flat outer points `[begin, end)`.
    pub fn call(&self, k: &JitKernel, begin: i64, end: i64) {
        // SAFETY: the tables outlive the call; `compile_loop_kernel` checked every
        // access of the kernel against the buffer lengths; concurrent calls touch
        // disjoint outer points, which the kernel IR guarantees are independent.
        unsafe {
            (k.f)(
                self.bufs as *const *mut u8,
                self.scalars as *const u32,
                self.helpers as *const *const u8,
                begin,
                end,
            )
        }
    }
}

/// How `k` is split: `(chunk size in outer points, number of chunks)`.
pub fn split(k: &JitKernel, threads: usize) -> (usize, usize) {
    let total = k.abi.outer_total;
    let work = total.saturating_mul(k.abi.work_per_point);
    if threads <= 1 || total <= 1 || work < PARALLEL_MIN_WORK {
        return (total.max(1), 1);
    }
    let chunks = (work / TASK_WORK).clamp(threads, threads * 8).min(total);
    let mut chunk = total.div_ceil(chunks);
    // Keep chunk starts on row starts (or at least on vector boundaries).
    let row = k.abi.row.max(1);
    chunk = if chunk >= row {
        chunk.div_ceil(row) * row
    } else {
        let align = 4 * k.abi.lanes.max(1);
        chunk.div_ceil(align) * align
    };
    (chunk, total.div_ceil(chunk))
}

/// Run one loop kernel over its whole outer range.
pub fn run_loop(k: &JitKernel, cx: &RunCx) -> Result<(), TaskError> {
    let total = k.abi.outer_total;
    if total == 0 {
        return Ok(());
    }
    let (chunk, n) = split(k, cx.pool.threads());
    if n == 1 {
        cx.call(k, 0, total as i64);
        return Ok(());
    }
    cx.pool
        .run(n, &|t| {
            let begin = t * chunk;
            let end = ((t + 1) * chunk).min(total);
            cx.call(k, begin as i64, end as i64);
        })
        .map_err(|_| TaskError::Panicked(k.name.clone()))
}

/// Run every kernel of `p` and then its updates.
pub fn run_program(
    p: &Program,
    code: &JitProgram,
    buffers: &mut Buffers,
    scalars: &[u32],
    helpers: &HelperTable,
    pool: &Pool,
) -> Result<(), TaskError> {
    {
        let cx = RunCx {
            bufs: buffers.table() as usize,
            scalars: scalars.as_ptr() as usize,
            helpers: helpers.as_ptr() as usize,
            buffers,
            pool,
        };
        let timed = crate::debug::level() >= 2;
        for (i, (kernel, jc)) in p.kernels.iter().zip(&code.kernels).enumerate() {
            let started = timed.then(std::time::Instant::now);
            match (kernel, jc) {
                (Kernel::Loop(_), JitCode::Loop(k)) => run_loop(k, &cx)?,
                (Kernel::MatMul(m), JitCode::MatMul { epilogue }) => run_matmul(m, epilogue.as_ref(), &cx)?,
                _ => return Err(TaskError::Panicked("kernel/code mismatch".into())),
            }
            if let Some(t) = started {
                crate::debug::on_kernel(p, i, t.elapsed());
            }
        }
    }
    for &(target, value) in &p.updates {
        if !buffers.same_memory(target, value) {
            buffers.copy(target, value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_compiler::codegen::clif::KernelAbi;

    unsafe extern "C" fn nop(_: *const *mut u8, _: *const u32, _: *const *const u8, _: i64, _: i64) {}

    fn kernel(total: usize, row: usize, lanes: usize, work: usize) -> JitKernel {
        JitKernel {
            name: "k".into(),
            f: nop,
            abi: KernelAbi {
                outer_total: total,
                lanes,
                vector_stages: 0,
                row,
                work_per_point: work,
                scalar_reason: None,
                reads: vec![],
                writes: vec![],
                uses_helpers: false,
            },
            compile_time: Default::default(),
            code_size: 0,
        }
    }

    #[test]
    fn small_kernels_stay_on_one_thread() {
        assert_eq!(split(&kernel(1000, 1000, 4, 5), 8), (1000, 1));
        assert_eq!(split(&kernel(1 << 20, 1 << 20, 4, 5), 1), (1 << 20, 1));
        assert_eq!(split(&kernel(1, 1, 1, 1 << 30), 8), (1, 1));
    }

    #[test]
    fn chunks_cover_the_range_and_align_to_rows_or_vectors() {
        for (total, row, lanes, work, threads) in [
            (1usize << 20, 1usize << 20, 4usize, 5usize, 2usize),
            (300_007, 300_007, 4, 5, 2),
            (1001 * 517, 517, 4, 3, 4),
            (4097, 1, 1, 1000, 2),
            (100, 10, 4, 100_000, 8),
        ] {
            let (chunk, n) = split(&kernel(total, row, lanes, work), threads);
            assert!(n >= 2, "{total} {row}: {n}");
            assert!(
                chunk * n >= total && chunk * (n - 1) < total,
                "{chunk} x {n} vs {total}"
            );
            assert!(chunk % row == 0 || chunk % (4 * lanes) == 0, "chunk {chunk} row {row}");
        }
    }
}
