//! Decisions about one loop kernel before any text is emitted: which buffers and
//! scalars it takes (and whether it writes them), the index type, how outer points map
//! onto threads ([`Mode`]), and whether the float4 path is used ([`VectorPlan`]).
//! Owns analysis only; emission lives in `body`, `elementwise` and `rowwise`.
//!
//! ## Mapping outer points onto threads
//! - [`Mode::Thread`]: one thread per outer point, stages run sequentially in that
//!   thread (exactly the evaluator's order). Used for elementwise kernels, kernels whose
//!   stages have at most `thread_inner_max` inner points, column-like reductions (the
//!   loads are contiguous across outer points, so thread-per-point is coalesced) and any
//!   stage the group modes could not run faithfully (see *hazards*).
//! - [`Mode::Warp`]: one warp per outer point; each stage's inner points are dealt out
//!   to the 32 lanes, accumulators combine by xor-butterfly shuffles.
//! - [`Mode::Block`]: one block per outer point for stages longer than
//!   `warp_inner_max`; warps combine through shared memory.
//!
//! *Hazards* force [`Mode::Thread`]: a stage that loads from storage it also stores to
//! (inner points would observe each other's stores in a different order), or a store
//! whose index does not move with every inner variable (several inner points write one
//! element, and the sequential model says the last one wins).

use std::collections::{BTreeMap, HashSet};

use kiln_ir::DType;

use super::index::{range, Range};
use super::types::{mem_type, ValueTypes};
use super::{CudaCodegenError, CudaOptions};
use crate::kernel::{BufferId, IndexExpr, Inst, LoopKernel, Program, Stage, Storage, ValueId};

/// How outer points map onto threads (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Thread,
    Warp,
    Block,
}

/// Which buffers a kernel touches, in BufferId order, and whether it writes them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Usage {
    pub buffers: BTreeMap<BufferId, bool>,
    pub scalars: Vec<usize>,
}

impl Usage {
    pub(crate) fn add_kernel(&mut self, k: &LoopKernel) {
        for st in &k.stages {
            for (_, inst) in &st.insts {
                match inst {
                    Inst::Load { buf, .. } => {
                        self.buffers.entry(*buf).or_insert(false);
                    }
                    Inst::Scalar { slot } if !self.scalars.contains(slot) => self.scalars.push(*slot),
                    _ => {}
                }
            }
            for s in &st.stores {
                self.buffers.insert(s.buf, true);
            }
        }
        self.scalars.sort_unstable();
    }
}

/// The root allocation of `buf` and its element offset in it.
pub(crate) fn root_of(p: &Program, buf: BufferId) -> (BufferId, usize) {
    let (mut cur, mut off) = (buf, 0usize);
    for _ in 0..=p.buffers.len() {
        match p.buffers.get(cur.0 as usize).map(|b| &b.storage) {
            Some(Storage::View { base, offset }) => {
                off += offset;
                cur = *base;
            }
            _ => break,
        }
    }
    (cur, off)
}

/// Checks that every buffer a kernel names exists and has a storable dtype.
pub(crate) fn check_buffers(p: &Program, kernel: &str, usage: &Usage) -> Result<(), CudaCodegenError> {
    for &b in usage.buffers.keys() {
        let buf = p.buffers.get(b.0 as usize).ok_or_else(|| CudaCodegenError::Malformed {
            kernel: kernel.to_string(),
            detail: format!("no buffer {b}"),
        })?;
        mem_type(kernel, buf.dtype)?;
    }
    for &s in &usage.scalars {
        if p.scalars.get(s).is_none() {
            return Err(CudaCodegenError::Malformed {
                kernel: kernel.to_string(),
                detail: format!("no scalar slot #{s}"),
            });
        }
    }
    Ok(())
}

/// Index expressions of a stage (loads, guards, index values, random indices, stores).
fn stage_indices(st: &Stage) -> Vec<&IndexExpr> {
    let mut out = Vec::new();
    for (_, inst) in &st.insts {
        match inst {
            Inst::Load { index, guards, .. } => {
                out.push(index);
                out.extend(guards.iter().map(|g| &g.expr));
            }
            Inst::Index(e) | Inst::Random { index: e, .. } => out.push(e),
            _ => {}
        }
    }
    out.extend(st.stores.iter().map(|s| &s.index));
    out
}

/// `int` when every index value (and every loop extent and buffer length) fits in
/// 32 bits, else `long long`.
pub(crate) fn index_type(p: &Program, k: &LoopKernel, usage: &Usage) -> &'static str {
    let mut widest = Range { lo: 0, hi: 0 };
    let outer_total: u128 = k.outer.iter().map(|&d| d as u128).product();
    widest.hi = widest.hi.max(outer_total as i128);
    for st in &k.stages {
        let mut ext = k.outer.clone();
        ext.extend(&st.inner);
        let inner_total: u128 = st.inner.iter().map(|&d| d as u128).product();
        widest.hi = widest.hi.max(inner_total as i128);
        for e in stage_indices(st) {
            range(e, &ext, &mut widest);
        }
    }
    for &b in usage.buffers.keys() {
        if let Some(buf) = p.buffers.get(b.0 as usize) {
            widest.hi = widest.hi.max(buf.len as i128);
        }
    }
    // Grid-stride loops step past the end by up to a grid's worth of threads.
    widest.hi += 1 << 28;
    if widest.fits_i32() {
        "int"
    } else {
        "long long"
    }
}

/// Why a kernel cannot spread a stage's inner points over threads, if it cannot.
pub(crate) fn hazard(p: &Program, k: &LoopKernel) -> Option<String> {
    let n_outer = k.outer.len();
    for (s, st) in k.stages.iter().enumerate() {
        let total: usize = st.inner.iter().product();
        if total <= 1 {
            continue;
        }
        let stored: HashSet<BufferId> = st.stores.iter().map(|x| root_of(p, x.buf).0).collect();
        for (_, inst) in &st.insts {
            if let Inst::Load { buf, .. } = inst {
                if stored.contains(&root_of(p, *buf).0) {
                    return Some(format!("stage {s} loads from storage it also stores to"));
                }
            }
        }
        for store in &st.stores {
            for (j, &d) in st.inner.iter().enumerate() {
                let var = n_outer + j;
                if d > 1 && !matches!(store.index.affine_in(var), Some(c) if c != 0) {
                    return Some(format!(
                        "stage {s} stores {} at an index that does not move with inner variable i{var}",
                        store.buf
                    ));
                }
            }
        }
    }
    None
}

/// Chooses how outer points map onto threads, with the reason (for the launch table).
pub(crate) fn choose_mode(p: &Program, k: &LoopKernel, o: &CudaOptions) -> (Mode, String) {
    let max_inner = k
        .stages
        .iter()
        .map(|s| s.inner.iter().product::<usize>())
        .max()
        .unwrap_or(1);
    let outer_total: usize = k.outer.iter().product();
    if max_inner <= 1 {
        return (Mode::Thread, "elementwise".into());
    }
    if let Some(h) = hazard(p, k) {
        return (Mode::Thread, format!("thread per point: {h}"));
    }
    if max_inner <= o.thread_inner_max {
        return (
            Mode::Thread,
            format!("thread per point: at most {max_inner} inner points"),
        );
    }
    if column_like(k) && outer_total >= o.column_outer_min {
        return (
            Mode::Thread,
            "thread per point: loads are contiguous across outer points (column reduction)".into(),
        );
    }
    if max_inner <= o.warp_inner_max {
        (Mode::Warp, format!("warp per point: up to {max_inner} inner points"))
    } else {
        (Mode::Block, format!("block per point: up to {max_inner} inner points"))
    }
}

/// Whether the multi-point stages read memory contiguously across outer points rather
/// than along their own innermost variable.
fn column_like(k: &LoopKernel) -> bool {
    let n_outer = k.outer.len();
    if n_outer == 0 {
        return false;
    }
    let last_outer = n_outer - 1;
    let (mut along_inner, mut along_outer) = (0, 0);
    for st in k.stages.iter().filter(|s| s.inner.iter().product::<usize>() > 1) {
        let last_inner = n_outer + st.inner.len() - 1;
        for (_, inst) in &st.insts {
            if let Inst::Load { index, .. } = inst {
                if index.affine_in(last_inner) == Some(1) {
                    along_inner += 1;
                } else if index.affine_in(last_outer) == Some(1) {
                    along_outer += 1;
                }
            }
        }
    }
    along_outer > 0 && along_inner == 0
}

/// How an index varies across the 4 lanes of the float4 path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LaneIndex {
    Uniform,
    Affine(i64),
    PerLane,
}

pub(crate) fn lane_index(e: &IndexExpr, vv: usize, uniform: &dyn Fn(ValueId) -> bool) -> LaneIndex {
    use LaneIndex::*;
    let aff = |c: i64| if c == 0 { Uniform } else { Affine(c) };
    match e {
        IndexExpr::Var(k) => aff((*k == vv) as i64),
        IndexExpr::Const(_) => Uniform,
        IndexExpr::Value(v) => {
            if uniform(*v) {
                Uniform
            } else {
                PerLane
            }
        }
        IndexExpr::Add(a, b) => match (lane_index(a, vv, uniform), lane_index(b, vv, uniform)) {
            (PerLane, _) | (_, PerLane) => PerLane,
            (Uniform, x) | (x, Uniform) => x,
            (Affine(x), Affine(y)) => aff(x + y),
        },
        IndexExpr::Mul(a, c) => match lane_index(a, vv, uniform) {
            Affine(x) => aff(x * c),
            x => x,
        },
        IndexExpr::Div(a, _) | IndexExpr::Mod(a, _) => match lane_index(a, vv, uniform) {
            Affine(_) => PerLane,
            x => x,
        },
    }
}

/// Whether `e` is a multiple of 4 at every lane-0 point (vector variable `vv` a multiple
/// of 4, every other variable anything in its extent).
fn multiple_of_4(e: &IndexExpr, vv: usize, extents: &[usize]) -> bool {
    match e {
        IndexExpr::Var(k) => *k == vv || extents.get(*k).copied().unwrap_or(1) <= 1,
        IndexExpr::Const(c) => c % 4 == 0,
        IndexExpr::Add(a, b) => multiple_of_4(a, vv, extents) && multiple_of_4(b, vv, extents),
        IndexExpr::Mul(a, c) => c % 4 == 0 || multiple_of_4(a, vv, extents),
        IndexExpr::Div(..) | IndexExpr::Mod(..) | IndexExpr::Value(_) => false,
    }
}

/// How one load or store is done on the float4 path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Same element for all 4 lanes (loads only): one scalar load.
    Uniform,
    /// 4 consecutive, 16-byte aligned elements: one vector access.
    Vector,
    /// Lane by lane.
    PerLane,
}

/// The float4 plan of an elementwise kernel.
#[derive(Clone, Debug)]
pub(crate) struct VectorPlan {
    /// The vector variable (the innermost outer variable).
    pub vv: usize,
    pub uniform: HashSet<ValueId>,
    /// Per load instruction (by result id) and per store (by position).
    pub loads: BTreeMap<ValueId, Access>,
    pub stores: Vec<Access>,
}

/// The float4 plan, or why the kernel runs one element per thread.
pub(crate) fn vector_plan(p: &Program, k: &LoopKernel, o: &CudaOptions) -> Result<VectorPlan, String> {
    if !o.vectorize {
        return Err("vectorisation is off".into());
    }
    let [st] = k.stages.as_slice() else {
        return Err("more than one stage".into());
    };
    if !st.inner.is_empty() || !st.accumulators.is_empty() {
        return Err("the stage has inner loops or accumulators".into());
    }
    let Some(&last) = k.outer.last() else {
        return Err("no outer loop".into());
    };
    if last % 4 != 0 || last == 0 {
        return Err(format!("innermost extent {last} is not a multiple of 4"));
    }
    let vv = k.outer.len() - 1;
    let aligned = |buf: BufferId, index: &IndexExpr| -> bool {
        let (_, off) = root_of(p, buf);
        off % 4 == 0 && multiple_of_4(index, vv, &k.outer)
    };
    let mut uniform: HashSet<ValueId> = HashSet::new();
    let mut loads = BTreeMap::new();
    for (id, inst) in &st.insts {
        let u = |v: &ValueId| uniform.contains(v);
        let uf = |v: ValueId| uniform.contains(&v);
        let is_uniform = match inst {
            Inst::Load { buf, index, guards, .. } => {
                let guards_uniform = guards
                    .iter()
                    .all(|g| lane_index(&g.expr, vv, &uf) == LaneIndex::Uniform);
                let access = match lane_index(index, vv, &uf) {
                    LaneIndex::Uniform if guards_uniform => Access::Uniform,
                    LaneIndex::Affine(1) if guards_uniform && aligned(*buf, index) => Access::Vector,
                    _ => Access::PerLane,
                };
                loads.insert(*id, access);
                access == Access::Uniform
            }
            Inst::Scalar { .. } | Inst::Const { .. } => true,
            Inst::LoopVar(v) => *v != vv,
            Inst::Index(e) => lane_index(e, vv, &uf) == LaneIndex::Uniform,
            Inst::Acc(_) => false,
            Inst::Unary { x, .. } | Inst::PowConst { x, .. } | Inst::Cast { x, .. } => u(x),
            Inst::Binary { a, b, .. } | Inst::Compare { a, b, .. } => u(a) && u(b),
            Inst::Select {
                cond,
                on_true,
                on_false,
            } => u(cond) && u(on_true) && u(on_false),
            Inst::Random {
                stream,
                seed,
                step,
                index,
                ..
            } => u(stream) && u(seed) && u(step) && lane_index(index, vv, &uf) == LaneIndex::Uniform,
        };
        if is_uniform {
            uniform.insert(*id);
        }
    }
    let uf = |v: ValueId| uniform.contains(&v);
    let stores: Vec<Access> = st
        .stores
        .iter()
        .map(|s| match lane_index(&s.index, vv, &uf) {
            LaneIndex::Affine(1) if aligned(s.buf, &s.index) => Access::Vector,
            _ => Access::PerLane,
        })
        .collect();
    if !stores.contains(&Access::Vector) {
        return Err("no store is 4 contiguous aligned elements".into());
    }
    Ok(VectorPlan {
        vv,
        uniform,
        loads,
        stores,
    })
}

/// The dtype of the buffer behind a load (F32 when unknown; callers checked buffers).
pub(crate) fn buffer_dtype(p: &Program, b: BufferId) -> DType {
    p.buffers.get(b.0 as usize).map_or(DType::F32, |b| b.dtype)
}

/// Everything emission needs to know about a loop kernel.
pub(crate) struct LoopPlan {
    pub types: ValueTypes,
    pub usage: Usage,
    pub idx: &'static str,
    pub mode: Mode,
    pub mode_reason: String,
    pub vector: Option<VectorPlan>,
    /// Why an elementwise kernel has no float4 path.
    pub scalar_reason: Option<String>,
}

impl LoopPlan {
    pub(crate) fn new(p: &Program, k: &LoopKernel, o: &CudaOptions) -> Result<Self, CudaCodegenError> {
        let types = ValueTypes::infer(p, k)?;
        let mut usage = Usage::default();
        usage.add_kernel(k);
        check_buffers(p, &k.name, &usage)?;
        let idx = index_type(p, k, &usage);
        let (mode, mode_reason) = choose_mode(p, k, o);
        let elementwise = k.stages.iter().all(|s| s.inner.iter().product::<usize>() <= 1);
        let (vector, scalar_reason) = if mode == Mode::Thread && elementwise {
            match vector_plan(p, k, o) {
                Ok(v) => (Some(v), None),
                Err(why) => (None, Some(why)),
            }
        } else {
            (None, None)
        };
        Ok(LoopPlan {
            types,
            usage,
            idx,
            mode,
            mode_reason,
            vector,
            scalar_reason,
        })
    }
}
