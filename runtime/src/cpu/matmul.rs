//! Matmul kernels on the CPU: `matrixmultiply::sgemm` (arbitrary strides, so
//! transposed operands need no copy) on blocks of output rows spread over the worker
//! pool, each block followed at once by the generated epilogue over the same rows
//! while they are still in cache. matrixmultiply runs single-threaded here (its own
//! `threading` feature is off): the pool owns all cores.

use kiln_compiler::kernel::{MatMulKernel, MatOperand};

use super::exec::{RunCx, TaskError};
use super::jit::JitKernel;

/// Output rows per block: enough work per task, and a block of C small enough to be
/// cache-resident when the epilogue runs (at most 64 rows).
fn rows_per_block(m: usize, n: usize, k: usize, batch: usize, threads: usize) -> usize {
    let flops = 2 * m.max(1) * n.max(1) * k.max(1) * batch.max(1);
    if threads <= 1 || flops < 200_000 {
        return m.max(1).min(64);
    }
    let want_tasks = threads * 2;
    let per_batch = want_tasks.div_ceil(batch.max(1)).max(1);
    m.div_ceil(per_batch).clamp(1, 64)
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
    let rows = rows_per_block(m.m, m.n, m.k, batch, cx.pool.threads());
    let blocks_per_batch = m.m.div_ceil(rows);
    let tasks = batch * blocks_per_batch;
    let (a_base, b_base, c_base) = (
        cx.ptr(m.a.buf) as *const f32,
        cx.ptr(m.b.buf) as *const f32,
        cx.ptr(m.out) as *mut f32,
    );
    // Raw pointers are not `Sync`; carry them as addresses.
    let (a_addr, b_addr, c_addr) = (a_base as usize, b_base as usize, c_base as usize);
    let task = |t: usize| {
        let bi = t / blocks_per_batch;
        let r0 = (t % blocks_per_batch) * rows;
        let r1 = (r0 + rows).min(m.m);
        let mut bidx = vec![0usize; m.batch.len()];
        unravel(bi, &m.batch, &mut bidx);
        let a_off = operand_offset(&m.a, &bidx) + r0 as isize * m.a.row_stride;
        let b_off = operand_offset(&m.b, &bidx);
        let c_off = (bi * m.m + r0) * m.n;
        // SAFETY: `bounds::check_matmul` proved every element of both operands and of
        // the output lies inside its buffer; blocks write disjoint rows of C.
        unsafe {
            matrixmultiply::sgemm(
                r1 - r0,
                m.k,
                m.n,
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
            let begin = ((bi * m.m + r0) * m.n) as i64;
            let end = ((bi * m.m + r1) * m.n) as i64;
            cx.call(e, begin, end);
        }
    };
    cx.pool
        .run(tasks, &task)
        .map_err(|_| TaskError::Panicked(m.name.clone()))?;
    Ok(())
}
