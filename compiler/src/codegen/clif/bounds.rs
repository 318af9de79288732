//! Static memory-safety check of a kernel program before code is generated: every
//! load and store index must lie inside its buffer for every point of the iteration
//! space, divisors must be positive, loop variables must exist, and matmul operands
//! must stay inside their buffers. Intervals are conservative (see `index::interval`);
//! a guarded load may rely on its guards for any sub-expression that equals a guard's
//! expression. Unguarded loads and all stores get no run-time check, so this is what
//! makes a buggy kernel program an error instead of a wild memory access. Guarded loads
//! (padding, unfold, concat) whose flat index the intervals cannot bound — the guards
//! constrain per-axis coordinates that simplification has folded into one sum — are
//! accepted: their generated code adds `index < len` to the guard condition, so they
//! read the fill value instead of out-of-range memory.

use super::index::{interval, Interval};
use super::CodegenError;
use crate::kernel::{Guard, IndexExpr, Inst, LoopKernel, MatMulKernel, MatOperand, Program};

fn oob(kernel: &str, detail: String) -> CodegenError {
    CodegenError::OutOfBounds {
        kernel: kernel.to_string(),
        detail,
    }
}

fn malformed(kernel: &str, detail: String) -> CodegenError {
    CodegenError::Malformed {
        kernel: kernel.to_string(),
        detail,
    }
}

/// Structural checks: variables in scope, positive divisors.
fn check_expr(kernel: &str, e: &IndexExpr, nvars: usize) -> Result<(), CodegenError> {
    match e {
        IndexExpr::Var(k) if *k >= nvars => Err(malformed(
            kernel,
            format!("index {e} uses loop variable i{k}, but only {nvars} are in scope"),
        )),
        IndexExpr::Var(_) | IndexExpr::Const(_) | IndexExpr::Value(_) => Ok(()),
        IndexExpr::Add(a, b) => {
            check_expr(kernel, a, nvars)?;
            check_expr(kernel, b, nvars)
        }
        IndexExpr::Mul(a, _) => check_expr(kernel, a, nvars),
        IndexExpr::Div(a, c) | IndexExpr::Mod(a, c) => {
            if *c <= 0 {
                return Err(malformed(kernel, format!("index {e} divides by {c}")));
            }
            check_expr(kernel, a, nvars)
        }
    }
}

fn check_access(
    kernel: &str,
    what: &str,
    e: &IndexExpr,
    guards: &[Guard],
    len: usize,
    extents: &[usize],
) -> Result<(), CodegenError> {
    let var = |k: usize| Interval {
        lo: 0,
        hi: extents[k] as i64 - 1,
    };
    let known = |s: &IndexExpr| {
        let mut best: Option<Interval> = None;
        for g in guards.iter().filter(|g| &g.expr == s) {
            let i = Interval { lo: 0, hi: g.upper - 1 };
            best = Some(match best {
                None => i,
                Some(b) => Interval {
                    lo: b.lo.max(i.lo),
                    hi: b.hi.min(i.hi),
                },
            });
        }
        best
    };
    if guards.iter().any(|g| g.upper <= 0) {
        return Ok(()); // never performed
    }
    let iv = interval(e, &var, &known);
    if iv.lo < 0 || iv.hi >= len as i64 {
        return Err(oob(
            kernel,
            format!(
                "{what} index {e} may take values in [{}, {}], outside 0..{len}",
                iv.lo, iv.hi
            ),
        ));
    }
    Ok(())
}

/// Check one loop kernel.
pub fn check_loop_kernel(p: &Program, k: &LoopKernel) -> Result<(), CodegenError> {
    let name = k.name.as_str();
    let total_outer: usize = k.outer.iter().product();
    for stage in &k.stages {
        let mut extents = k.outer.clone();
        extents.extend(stage.inner.iter().copied());
        let runs = total_outer > 0 && stage.inner.iter().product::<usize>() > 0;
        let nvars = extents.len();
        let buf_len = |b: crate::kernel::BufferId| {
            p.buffers
                .get(b.0 as usize)
                .map(|x| x.len)
                .ok_or_else(|| malformed(name, format!("no buffer {b}")))
        };
        for (id, inst) in &stage.insts {
            match inst {
                Inst::Load { buf, index, guards, .. } => {
                    check_expr(name, index, nvars)?;
                    for g in guards {
                        check_expr(name, &g.expr, nvars)?;
                    }
                    let len = buf_len(*buf)?;
                    if runs && guards.is_empty() {
                        check_access(name, &format!("{id} = load {buf}"), index, guards, len, &extents)?;
                    }
                }
                Inst::Index(e) | Inst::Random { index: e, .. } => check_expr(name, e, nvars)?,
                Inst::LoopVar(v) if *v >= nvars => {
                    return Err(malformed(name, format!("{id} reads loop variable i{v} (only {nvars})")))
                }
                _ => {}
            }
        }
        for st in &stage.stores {
            check_expr(name, &st.index, nvars)?;
            let len = buf_len(st.buf)?;
            if runs {
                check_access(name, &format!("store {}", st.buf), &st.index, &[], len, &extents)?;
            }
        }
    }
    Ok(())
}

/// Smallest and largest element offset a strided operand touches.
fn operand_span(op: &MatOperand, batch: &[usize], rows: usize, cols: usize) -> (i64, i64) {
    let mut lo = op.offset as i64;
    let mut hi = op.offset as i64;
    let mut term = |stride: isize, n: usize| {
        let t = stride as i64 * (n as i64 - 1);
        if t < 0 {
            lo += t;
        } else {
            hi += t;
        }
    };
    for (&s, &n) in op.batch_strides.iter().zip(batch) {
        term(s, n);
    }
    term(op.row_stride, rows);
    term(op.col_stride, cols);
    (lo, hi)
}

/// Check a matmul's operands, output and epilogue space.
pub fn check_matmul(p: &Program, m: &MatMulKernel) -> Result<(), CodegenError> {
    let name = m.name.as_str();
    let batch_total: usize = m.batch.iter().product();
    for (what, op, rows, cols) in [("a", &m.a, m.m, m.k), ("b", &m.b, m.k, m.n)] {
        if op.batch_strides.len() != m.batch.len() {
            return Err(malformed(
                name,
                format!(
                    "operand {what} has {} batch strides for {} batch dims",
                    op.batch_strides.len(),
                    m.batch.len()
                ),
            ));
        }
        let buf = p
            .buffers
            .get(op.buf.0 as usize)
            .ok_or_else(|| malformed(name, format!("no buffer {}", op.buf)))?;
        if batch_total == 0 || rows == 0 || cols == 0 {
            continue;
        }
        let (lo, hi) = operand_span(op, &m.batch, rows, cols);
        if lo < 0 || hi >= buf.len as i64 {
            return Err(oob(
                name,
                format!(
                    "operand {what} spans [{lo}, {hi}] of {}, which has {} elements",
                    op.buf, buf.len
                ),
            ));
        }
    }
    let out = p
        .buffers
        .get(m.out.0 as usize)
        .ok_or_else(|| malformed(name, format!("no buffer {}", m.out)))?;
    let need = batch_total * m.m * m.n;
    if out.len < need {
        return Err(oob(
            name,
            format!("output {} has {} elements, needs {need}", m.out, out.len),
        ));
    }
    for id in [m.a.buf, m.b.buf, m.out] {
        if p.buffers[id.0 as usize].dtype != kiln_ir::DType::F32 {
            return Err(CodegenError::Unsupported {
                kernel: name.to_string(),
                detail: format!(
                    "matmul buffer {id} is {}, the CPU GEMM is f32 only",
                    p.buffers[id.0 as usize].dtype
                ),
            });
        }
    }
    if let Some(e) = &m.epilogue {
        let mut want = m.batch.clone();
        want.extend([m.m, m.n]);
        if e.outer != want {
            return Err(malformed(
                name,
                format!("epilogue outer {:?} differs from the output space {want:?}", e.outer),
            ));
        }
        check_loop_kernel(p, e)?;
    }
    Ok(())
}
