//! Matmul kernels on the CPU: `matrixmultiply::sgemm` (arbitrary strides, so
//! transposed operands need no copy) on blocks of the output spread over the worker
//! pool, each block followed at once by the generated epilogue over the same
//! elements while they are still in cache. matrixmultiply runs single-threaded here
//! (its own `threading` feature is off): the pool owns all cores.
//!
//! Blocking: one block per thread (and batch element). Every sgemm call packs the
//! operand it does not split, so blocks split the dimension that makes the repeated
//! packing cheaper: rows of C (repacking B, `k×n`) when `m >= n`, columns of C
//! (repacking A, `m×k`) otherwise. A block's output stays under ~1 MB so its epilogue
//! finds it in cache.

use kiln_compiler::kernel::{MatMulKernel, MatOperand};

use super::exec::{RunCx, TaskError};
use super::jit::JitKernel;

/// Largest output block (elements) per task, so the epilogue runs on cached data.
const MAX_BLOCK_ELEMS: usize = 256 * 1024;
/// Below this many flops a matmul runs as one task per batch element.
const PARALLEL_MIN_FLOPS: usize = 400_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Split {
    /// Blocks of this many rows of C.
    Rows(usize),
    /// Blocks of this many columns of C (a multiple of 16 unless it is all of `n`).
    Cols(usize),
}

/// How to block one matmul; returns the split and the blocks per batch element.
fn plan_split(m: usize, n: usize, k: usize, batch: usize, threads: usize) -> (Split, usize) {
    let flops = 2usize
        .saturating_mul(m)
        .saturating_mul(n)
        .saturating_mul(k.max(1))
        .saturating_mul(batch);
    let per_batch = if threads <= 1 || flops < PARALLEL_MIN_FLOPS {
        1
    } else {
        threads.div_ceil(batch).max(1)
    };
    if m >= n || n < 32 {
        let mut rows = m.div_ceil(per_batch).max(1);
        rows = rows.min((MAX_BLOCK_ELEMS / n.max(1)).max(1));
        (Split::Rows(rows), m.div_ceil(rows))
    } else {
        let mut cols = n.div_ceil(per_batch).max(1);
        cols = cols.min((MAX_BLOCK_ELEMS / m.max(1)).max(16));
        cols = cols.div_ceil(16) * 16;
        if cols >= n {
            return (Split::Cols(n), 1);
        }
        (Split::Cols(cols), n.div_ceil(cols))
    }
}

fn unravel(mut flat: usize, dims: &[usize], out: &mut [usize]) {
    for (i, &d) in dims.iter().enumerate().rev() {
        out[i] = flat % d.max(1);
        flat /= d.max(1);
    }
}

fn operand_offset(op: &MatOperand, bidx: &[usize]) -> isize {
    op.offset as isize
        + op.batch_strides
            .iter()
            .zip(bidx)
            .map(|(&s, &i)| s * i as isize)
            .sum::<isize>()
}

/// Run one matmul kernel (and its epilogue) over the pool.
pub fn run_matmul(m: &MatMulKernel, epilogue: Option<&JitKernel>, cx: &RunCx) -> Result<(), TaskError> {
    let batch: usize = m.batch.iter().product();
    if batch == 0 || m.m == 0 || m.n == 0 {
        return Ok(());
    }
    let (split, blocks) = plan_split(m.m, m.n, m.k, batch, cx.pool.threads());
    let tasks = batch * blocks;
    // Raw pointers are not `Sync`; carry them as addresses.
    let (a_addr, b_addr, c_addr) = (
        cx.ptr(m.a.buf) as usize,
        cx.ptr(m.b.buf) as usize,
        cx.ptr(m.out) as usize,
    );
    let task = |t: usize| {
        let bi = t / blocks;
        let blk = t % blocks;
        let mut bidx = vec![0usize; m.batch.len()];
        unravel(bi, &m.batch, &mut bidx);
        let (r0, r1, c0, c1) = match split {
            Split::Rows(rows) => (blk * rows, ((blk + 1) * rows).min(m.m), 0, m.n),
            Split::Cols(cols) => (0, m.m, blk * cols, ((blk + 1) * cols).min(m.n)),
        };
        let a_off = operand_offset(&m.a, &bidx) + r0 as isize * m.a.row_stride;
        let b_off = operand_offset(&m.b, &bidx) + c0 as isize * m.b.col_stride;
        let c_off = (bi * m.m + r0) * m.n + c0;
        // SAFETY: `bounds::check_matmul` proved every element of both operands and of
        // the output lies inside its buffer; blocks write disjoint parts of C.
        unsafe {
            matrixmultiply::sgemm(
                r1 - r0,
                m.k,
                c1 - c0,
                1.0,
                (a_addr as *const f32).offset(a_off),
                m.a.row_stride,
                m.a.col_stride,
                (b_addr as *const f32).offset(b_off),
                m.b.row_stride,
                m.b.col_stride,
                0.0,
                (c_addr as *mut f32).add(c_off),
                m.n as isize,
                1,
            );
        }
        if let Some(e) = epilogue {
            let row0 = bi * m.m;
            if c0 == 0 && c1 == m.n {
                cx.call(e, ((row0 + r0) * m.n) as i64, ((row0 + r1) * m.n) as i64);
            } else {
                for i in r0..r1 {
                    let base = (row0 + i) * m.n;
                    cx.call(e, (base + c0) as i64, (base + c1) as i64);
                }
            }
        }
    };
    cx.pool
        .run(tasks, &task)
        .map_err(|_| TaskError::Panicked(m.name.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_split_the_cheaper_dimension_and_cover_everything() {
        // Small: one task.
        assert_eq!(plan_split(4, 5, 6, 1, 8), (Split::Rows(4), 1));
        // Tall: rows, one block per thread.
        assert_eq!(plan_split(784, 256, 128, 1, 2), (Split::Rows(392), 2));
        // Wide: columns in multiples of 16.
        assert_eq!(plan_split(128, 256, 784, 1, 2), (Split::Cols(128), 2));
        assert_eq!(plan_split(10, 100, 784, 1, 3), (Split::Cols(48), 3));
        // Batched: one block per batch element when there are enough of them.
        assert_eq!(plan_split(64, 64, 64, 8, 2), (Split::Rows(64), 1));
        for (m, n, k, b, t) in [
            (300, 96, 128, 1, 2),
            (17, 1000, 50, 1, 4),
            (5, 130, 1, 2, 8),
            (1000, 4096, 64, 1, 2),
        ] {
            let (s, blocks) = plan_split(m, n, k, b, t);
            match s {
                Split::Rows(r) => assert!(r * blocks >= m && r * (blocks - 1) < m && r * n <= MAX_BLOCK_ELEMS.max(n)),
                Split::Cols(c) => assert!(c * blocks >= n && c * (blocks - 1) < n),
            }
        }
    }
}
