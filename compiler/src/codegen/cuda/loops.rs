//! Loop kernels on the scalar paths: [`Mode::Thread`] (one thread per outer point,
//! grid-stride), [`Mode::Warp`] and [`Mode::Block`] (a warp or a block per outer point,
//! inner points dealt out to its threads, accumulators combined by shuffles and shared
//! memory). Also the per-point stage code that matmul epilogues reuse. The float4 path
//! lives in `vector`; decisions come from `plan`.

use kiln_ir::DType;

use super::body::{fold_op, fold_stmt, AccCode, Body, Names};
use super::launch::{blocks_for, params, signature, Launch};
use super::plan::{root_of, LoopPlan, Mode};
use super::writer::Code;
use super::{comment_text, CudaCodegenError, CudaOptions};
use crate::kernel::{Inst, LoopKernel, Program, Reduction, Stage};

/// `const idx iK = ...;` for every dimension of `dims`, unravelling row-major `flat`
/// into loop variables `first..first+dims.len()`.
pub(crate) fn unravel(c: &mut Code, idx: &str, flat: &str, dims: &[usize], first: usize) {
    let mut stride: u128 = 1;
    let mut lines = Vec::with_capacity(dims.len());
    for (j, &d) in dims.iter().enumerate().rev() {
        let var = first + j;
        let e = if d <= 1 {
            "0".to_string()
        } else {
            let q = if stride == 1 {
                flat.to_string()
            } else {
                format!("{flat} / {stride}")
            };
            if j == 0 {
                q
            } else if stride == 1 {
                format!("{flat} % {d}")
            } else {
                format!("({q}) % {d}")
            }
        };
        lines.push(format!("const {idx} i{var} = {e};"));
        stride *= d.max(1) as u128;
    }
    for l in lines.into_iter().rev() {
        c.line(l);
    }
}

/// The kernel-IR listing of `k` as a comment block (readable generated code).
pub(crate) fn ir_comment(c: &mut Code, k: &LoopKernel) {
    c.comment(comment_text(&k.to_string()));
}

/// Trailing comment of a load: `b3: Param("w")` (and whether a matmul epilogue reads
/// the result from a register instead).
fn load_note(p: &Program, body: &Body, inst: &Inst) -> Option<String> {
    match inst {
        Inst::Load { buf, guards, .. } => p.buffers.get(buf.0 as usize).map(|b| {
            let forwarded = matches!(&body.forward, Some((out, _)) if out == buf && guards.is_empty());
            let how = if forwarded {
                " (the matmul result, from a register)"
            } else {
                ""
            };
            comment_text(&format!("{buf}: {:?}{how}", b.role))
        }),
        _ => None,
    }
}

/// How a stage's inner points are spread over threads.
#[derive(Clone, Copy)]
pub(crate) struct Spread {
    pub mode: Mode,
    /// Threads cooperating on one outer point (1, 32 or the block size).
    pub group: u32,
}

/// Shared-memory slots for block-mode combines: (f32 slots, i32 slots, argmax slots).
fn acc_slots(k: &LoopKernel, body: &Body) -> (usize, usize, usize) {
    let mut most = (0, 0, 0);
    for st in &k.stages {
        let (mut f, mut i, mut a) = (0, 0, 0);
        for acc in &st.accumulators {
            match (&acc.reduction, body.types.acc(acc.id)) {
                (Reduction::ArgMax { .. }, _) => a += 1,
                (_, DType::I32) => i += 1,
                _ => f += 1,
            }
        }
        most = (most.0.max(f), most.1.max(i), most.2.max(a));
    }
    most
}

/// The code of all stages for the outer point whose variables are already defined.
pub(crate) fn emit_stages(
    c: &mut Code,
    p: &Program,
    k: &LoopKernel,
    body: &Body,
    spread: Spread,
) -> Result<(), CudaCodegenError> {
    let names = Names {
        value: &|v| format!("{v}"),
        var: &|k| format!("i{k}"),
    };
    let n_outer = k.outer.len();
    let idx = body.idx;
    for (s, st) in k.stages.iter().enumerate() {
        let total: usize = st.inner.iter().product();
        let mut extents = k.outer.clone();
        extents.extend(&st.inner);
        c.comment(format!(
            "stage {s}: inner {:?} ({total} point{})",
            st.inner,
            if total == 1 { "" } else { "s" }
        ));
        for acc in &st.accumulators {
            let code = AccCode::new(acc, body.types);
            c.line(format!("{} {} = {};", code.state_type, code.state, code.identity));
        }
        match (spread.mode, total) {
            (Mode::Thread, 1) => c.open(""),
            (Mode::Thread, _) => c.open(format!("for ({idx} r = 0; r < {total}; ++r)")),
            (_, _) => c.open(format!("for ({idx} r = lane; r < {total}; r += {})", spread.group)),
        }
        if total == 1 {
            for j in 0..st.inner.len() {
                c.line(format!("const {idx} i{} = 0;", n_outer + j));
            }
        } else {
            unravel(c, idx, "r", &st.inner, n_outer);
        }
        for (id, inst) in &st.insts {
            let def = body.def(*id, inst, &names, &extents)?;
            match load_note(p, body, inst) {
                Some(note) => c.line(format!("{def}  // {note}")),
                None => c.line(def),
            }
        }
        let pos = if total == 1 { "0" } else { "r" };
        for acc in &st.accumulators {
            c.line(fold_stmt(acc, body.types, &names, pos)?);
        }
        for store in &st.stores {
            c.line(body.store(store, &names, &extents)?);
        }
        c.close();
        if spread.mode != Mode::Thread && !st.accumulators.is_empty() {
            combine(c, st, body, spread);
        }
        for acc in &st.accumulators {
            let code = AccCode::new(acc, body.types);
            match &acc.reduction {
                Reduction::Fold {
                    op: kiln_ir::ReduceOp::Mean,
                    ..
                } => c.line(format!("{0} = kiln_fdiv({0}, {1}.0f);", code.state, total)),
                Reduction::Fold { .. } => {}
                Reduction::ArgMax { .. } => c.line(format!("const int {} = {}.index;", acc.id, code.state)),
            }
        }
        let combined_in_block = spread.mode == Mode::Block && !st.accumulators.is_empty();
        if s + 1 < k.stages.len() && !combined_in_block && stores_seen_later(p, k, s) {
            match spread.mode {
                Mode::Thread => {}
                Mode::Warp => c.line("__syncwarp();  // later stages see this stage's stores"),
                Mode::Block => c.line("__syncthreads();  // later stages see this stage's stores"),
            }
        }
    }
    Ok(())
}

/// Whether stage `s` (or an earlier one) stores to storage that a later stage loads:
/// only then must the group's threads synchronise between stages.
fn stores_seen_later(p: &Program, k: &LoopKernel, s: usize) -> bool {
    let stored: Vec<_> = k.stages[..=s]
        .iter()
        .flat_map(|st| st.stores.iter().map(|x| root_of(p, x.buf).0))
        .collect();
    k.stages[s + 1..].iter().any(|st| {
        st.insts
            .iter()
            .any(|(_, i)| matches!(i, Inst::Load { buf, .. } if stored.contains(&root_of(p, *buf).0)))
    })
}

/// Combine the stage's per-thread partial accumulators across the group; afterwards
/// every thread of the group holds the result.
fn combine(c: &mut Code, st: &Stage, body: &Body, spread: Spread) {
    c.comment("combine the partial accumulators of the group's threads");
    c.open("for (int m = 16; m > 0; m >>= 1)");
    for acc in &st.accumulators {
        let code = AccCode::new(acc, body.types);
        let s = &code.state;
        match &acc.reduction {
            Reduction::Fold { op, .. } => {
                let t = body.types.acc(acc.id);
                let other = format!("__shfl_xor_sync(0xffffffffu, {s}, m)");
                c.line(format!("{s} = {};", fold_op(*op, t, s, &other)));
            }
            Reduction::ArgMax { .. } => {
                c.line(format!("{s} = kiln_argmax_combine({s}, kiln_argmax_shfl_xor({s}, m));"))
            }
        }
    }
    c.close();
    if spread.mode != Mode::Block {
        return;
    }
    let warps = spread.group / 32;
    let slot = |acc: &crate::kernel::Accumulator, counters: &mut (usize, usize, usize)| -> String {
        let (arr, n) = match (&acc.reduction, body.types.acc(acc.id)) {
            (Reduction::ArgMax { .. }, _) => ("kiln_red_a", &mut counters.2),
            (_, DType::I32) => ("kiln_red_i", &mut counters.1),
            _ => ("kiln_red_f", &mut counters.0),
        };
        *n += 1;
        format!("{arr}[{}]", *n - 1)
    };
    let mut counters = (0, 0, 0);
    c.open("if ((threadIdx.x & 31) == 0)");
    for acc in &st.accumulators {
        let code = AccCode::new(acc, body.types);
        c.line(format!(
            "{}[threadIdx.x >> 5] = {};",
            slot(acc, &mut counters),
            code.state
        ));
    }
    c.close();
    c.line("__syncthreads();");
    let mut counters = (0, 0, 0);
    for acc in &st.accumulators {
        let code = AccCode::new(acc, body.types);
        let s = &code.state;
        let arr = slot(acc, &mut counters);
        c.line(format!("{s} = {};", code.identity));
        c.open(format!("for (int w = 0; w < {warps}; ++w)"));
        match &acc.reduction {
            Reduction::Fold { op, .. } => {
                let t = body.types.acc(acc.id);
                c.line(format!("{s} = {};", fold_op(*op, t, s, &format!("{arr}[w]"))));
            }
            Reduction::ArgMax { .. } => c.line(format!("{s} = kiln_argmax_combine({s}, {arr}[w]);")),
        }
        c.close();
    }
    c.line("__syncthreads();  // the shared slots may be reused");
}

/// A whole loop kernel on a scalar path (Thread, Warp or Block mode).
pub(crate) fn emit_scalar_kernel(
    p: &Program,
    k: &LoopKernel,
    name: &str,
    plan: &LoopPlan,
    o: &CudaOptions,
) -> Result<(String, Launch), CudaCodegenError> {
    let (args, decls) = params(p, &k.name, &plan.usage)?;
    let body = Body {
        p,
        kernel: &k.name,
        types: &plan.types,
        idx: plan.idx,
        forward: None,
    };
    let idx = plan.idx;
    let total: u128 = k.outer.iter().map(|&d| d as u128).product();
    let block = o.block_size;
    let spread = Spread {
        mode: plan.mode,
        group: match plan.mode {
            Mode::Thread => 1,
            Mode::Warp => 32,
            Mode::Block => block,
        },
    };
    let mut c = Code::new();
    ir_comment(&mut c, k);
    let why = match &plan.scalar_reason {
        Some(r) => format!("{}; scalar: {r}", plan.mode_reason),
        None => plan.mode_reason.clone(),
    };
    c.comment(format!("mapping: {why}"));
    c.open(signature(name, block, None, &decls));
    if plan.mode == Mode::Block {
        let (f, i, a) = acc_slots(k, &body);
        let warps = block / 32;
        for (n, ty, arr) in [
            (f, "float", "kiln_red_f"),
            (i, "int", "kiln_red_i"),
            (a, "kiln_argmax", "kiln_red_a"),
        ] {
            if n > 0 {
                c.line(format!("__shared__ {ty} {arr}[{n}][{warps}];"));
            }
        }
    }
    match plan.mode {
        Mode::Thread => {
            c.line(format!("const {idx} nthreads = ({idx})gridDim.x * blockDim.x;"));
            c.open(format!(
                "for ({idx} o = ({idx})blockIdx.x * blockDim.x + threadIdx.x; o < {total}; o += nthreads)"
            ));
        }
        Mode::Warp => {
            c.line("const int lane = threadIdx.x & 31;");
            c.line(format!("const {idx} ngroups = (({idx})gridDim.x * blockDim.x) >> 5;"));
            c.open(format!(
                "for ({idx} o = (({idx})blockIdx.x * blockDim.x + threadIdx.x) >> 5; o < {total}; o += ngroups)"
            ));
        }
        Mode::Block => {
            c.line("const int lane = threadIdx.x;");
            c.open(format!("for ({idx} o = blockIdx.x; o < {total}; o += gridDim.x)"));
        }
    }
    unravel(&mut c, idx, "o", &k.outer, 0);
    emit_stages(&mut c, p, k, &body, spread)?;
    c.close();
    c.close();
    let per_block = match plan.mode {
        Mode::Thread => block as u64,
        Mode::Warp => (block / 32) as u64,
        Mode::Block => 1,
    };
    let launch = Launch {
        grid: [
            blocks_for(total.min(u64::MAX as u128) as u64, per_block, o.max_blocks),
            1,
            1,
        ],
        block: [block, 1, 1],
        dynamic_shared_bytes: 0,
        args,
    };
    Ok((c.finish(), launch))
}
