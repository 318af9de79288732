//! Static analysis of one loop kernel before emission: the dtype of every value, which
//! values are uniform across the 4 lanes of a vector loop, which loop runs in lanes,
//! and which multiplies fuse into their single consumer as FMA.
//!
//! First choice is the innermost outer loop variable ("outer" vectorisation: four
//! independent outer points per iteration). An index is classified as uniform (same
//! for all lanes), affine with a coefficient in the vector variable, or per-lane. The
//! outer loop runs in lanes when, in every stage, every store is affine with
//! coefficient 1 (a contiguous 4-lane store) and every load is uniform, contiguous, or
//! a data-dependent gather. Otherwise (e.g. a row reduction whose loads stride by the
//! row length) each stage's innermost inner loop is tried with the same rules ("inner"
//! vectorisation: accumulators keep four partial lanes combined after the loop), and a
//! stage that fails both runs scalar. The ABI reports the outer reason. Emission must
//! classify exactly like [`classify`].

use std::collections::{HashMap, HashSet};

use kiln_ir::{BinaryOp, DType, ReduceOp};

use super::CodegenError;
use crate::kernel::{AccId, IndexExpr, Inst, LoopKernel, Program, Reduction, Stage, ValueId};

/// How an index varies across the 4 lanes of the vector loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IxClass {
    /// The same for every lane.
    Uniform,
    /// `base + coef * lane`, `coef != 0`.
    Affine(i64),
    /// Computed lane by lane; `from_var` when the vector variable occurs non-affinely
    /// (under div/mod), otherwise it is a data-dependent (gather) index.
    PerLane { from_var: bool },
}

/// Classify `e` for vector variable `vv`; `uniform(v)` tells whether value `v` is.
pub fn classify(e: &IndexExpr, vv: usize, uniform: &dyn Fn(ValueId) -> bool) -> IxClass {
    use IxClass::*;
    let aff = |c: i64| if c == 0 { Uniform } else { Affine(c) };
    match e {
        IndexExpr::Var(k) => aff((*k == vv) as i64),
        IndexExpr::Const(_) => Uniform,
        IndexExpr::Value(v) => {
            if uniform(*v) {
                Uniform
            } else {
                PerLane { from_var: false }
            }
        }
        IndexExpr::Add(a, b) => match (classify(a, vv, uniform), classify(b, vv, uniform)) {
            (PerLane { from_var: x }, PerLane { from_var: y }) => PerLane { from_var: x || y },
            (p @ PerLane { .. }, _) | (_, p @ PerLane { .. }) => p,
            (Uniform, o) | (o, Uniform) => o,
            (Affine(x), Affine(y)) => aff(x + y),
        },
        IndexExpr::Mul(a, c) => match classify(a, vv, uniform) {
            Affine(x) => aff(x * c),
            o => o,
        },
        IndexExpr::Div(a, _) | IndexExpr::Mod(a, _) => match classify(a, vv, uniform) {
            Affine(_) => PerLane { from_var: true },
            o => o,
        },
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValInfo {
    pub dtype: DType,
    /// Same in every lane (always true in scalar mode).
    pub uniform: bool,
}

#[derive(Clone, Debug)]
pub struct Plan {
    /// The innermost outer variable, when the outer loop runs in f32x4 lanes.
    pub vector_var: Option<usize>,
    /// Why the outer loop runs scalar, when it does.
    pub scalar_reason: Option<String>,
    /// Per stage: the innermost inner variable when that stage's inner loop runs in
    /// f32x4 lanes instead ("inner" vectorisation of row reductions; only when the
    /// outer loop is scalar). Accumulators then keep 4 partial lanes, combined after
    /// the stage.
    pub stage_vector: Vec<Option<usize>>,
    pub values: HashMap<ValueId, ValInfo>,
    pub accs: HashMap<AccId, ValInfo>,
    /// Multiplies emitted inside their single consumer (an add/sub or a sum fold).
    pub fused_muls: HashSet<ValueId>,
    /// Rough operations per outer point.
    pub work_per_point: usize,
}

impl Plan {
    /// Whether the outer loop runs in lanes.
    pub fn is_vector(&self) -> bool {
        self.vector_var.is_some()
    }

    /// Stages whose inner loop runs in lanes.
    pub fn vector_stages(&self) -> usize {
        self.stage_vector.iter().filter(|s| s.is_some()).count()
    }
}

fn malformed(k: &LoopKernel, detail: String) -> CodegenError {
    CodegenError::Malformed {
        kernel: k.name.clone(),
        detail,
    }
}

type Dtypes = (HashMap<ValueId, DType>, HashMap<AccId, DType>);

/// The dtype of every value and accumulator, checked like the kernel-IR evaluator does.
fn dtypes(p: &Program, k: &LoopKernel) -> Result<Dtypes, CodegenError> {
    let mut vals: HashMap<ValueId, DType> = HashMap::new();
    let mut accs: HashMap<AccId, DType> = HashMap::new();
    for (s, stage) in k.stages.iter().enumerate() {
        let mut local: HashMap<ValueId, DType> = HashMap::new();
        for (id, inst) in &stage.insts {
            let get = |v: &ValueId| {
                local
                    .get(v)
                    .copied()
                    .ok_or_else(|| malformed(k, format!("stage {s}: {v} is used before it is defined in this stage")))
            };
            let t = match inst {
                Inst::Load { buf, .. } => {
                    let b = p
                        .buffers
                        .get(buf.0 as usize)
                        .ok_or_else(|| malformed(k, format!("no buffer {buf}")))?;
                    b.dtype
                }
                Inst::Scalar { slot } => {
                    p.scalars
                        .get(*slot)
                        .ok_or_else(|| malformed(k, format!("no scalar slot #{slot}")))?
                        .dtype
                }
                Inst::Const { dtype, .. } => *dtype,
                Inst::LoopVar(_) | Inst::Index(_) => DType::I32,
                Inst::Acc(a) => *accs
                    .get(a)
                    .ok_or_else(|| malformed(k, format!("{a} is read before an earlier stage finished it")))?,
                Inst::Unary { x, .. } => get(x)?,
                Inst::Binary { op, a, b } => {
                    let (ta, tb) = (get(a)?, get(b)?);
                    if ta != tb || !ta.is_numeric() || (*op == BinaryOp::Div && ta != DType::F32) {
                        return Err(malformed(k, format!("{op:?} of {ta} and {tb}")));
                    }
                    ta
                }
                Inst::PowConst { x, .. } => {
                    if get(x)? != DType::F32 {
                        return Err(malformed(k, format!("pow of a {} value", get(x)?)));
                    }
                    DType::F32
                }
                Inst::Compare { a, b, .. } => {
                    if get(a)? != get(b)? {
                        return Err(malformed(k, format!("compare of {} and {}", get(a)?, get(b)?)));
                    }
                    DType::Bool
                }
                Inst::Select {
                    cond,
                    on_true,
                    on_false,
                } => {
                    let (c, t, f) = (get(cond)?, get(on_true)?, get(on_false)?);
                    if c != DType::Bool || t != f {
                        return Err(malformed(k, format!("select({c}, {t}, {f}) is ill-typed")));
                    }
                    t
                }
                Inst::Cast { x, to } => {
                    get(x)?;
                    *to
                }
                Inst::Random { stream, seed, step, .. } => {
                    if get(seed)? != DType::I32 || get(step)? != DType::I32 || get(stream)? != DType::I32 {
                        return Err(malformed(k, "random needs i32 stream, seed and step".into()));
                    }
                    DType::F32
                }
            };
            if matches!(t, DType::F16 | DType::BF16) && !matches!(inst, Inst::Cast { .. } | Inst::Select { .. }) {
                return Err(CodegenError::Unsupported {
                    kernel: k.name.clone(),
                    detail: format!("{id} has storage-only dtype {t}; only casts may produce f16/bf16 values"),
                });
            }
            if local.insert(*id, t).is_some() || vals.insert(*id, t).is_some() {
                return Err(malformed(k, format!("{id} is defined twice")));
            }
        }
        for a in &stage.accumulators {
            let (value_t, t) = match &a.reduction {
                Reduction::Fold { op, value } => {
                    let vt = local
                        .get(value)
                        .copied()
                        .ok_or_else(|| malformed(k, format!("{} folds undefined {value}", a.id)))?;
                    if !vt.is_numeric() || (vt == DType::I32 && *op == ReduceOp::Mean) {
                        return Err(malformed(k, format!("{} folds {op:?} over {vt}", a.id)));
                    }
                    (vt, vt)
                }
                Reduction::ArgMax { value, index } => {
                    let vt = local
                        .get(value)
                        .copied()
                        .ok_or_else(|| malformed(k, format!("{} folds undefined {value}", a.id)))?;
                    if local.get(index) != Some(&DType::I32) || !vt.is_numeric() {
                        return Err(malformed(k, format!("argmax {} needs a number and an i32 index", a.id)));
                    }
                    (vt, DType::I32)
                }
            };
            if a.dtype != t {
                return Err(malformed(
                    k,
                    format!("{} is declared {} but folds {value_t}", a.id, a.dtype),
                ));
            }
            if accs.insert(a.id, t).is_some() {
                return Err(malformed(k, format!("{} is defined twice", a.id)));
            }
        }
        for st in &stage.stores {
            let vt = local
                .get(&st.value)
                .copied()
                .ok_or_else(|| malformed(k, format!("store of undefined {}", st.value)))?;
            let b = p
                .buffers
                .get(st.buf.0 as usize)
                .ok_or_else(|| malformed(k, format!("store to missing buffer {}", st.buf)))?;
            if b.dtype != vt {
                return Err(malformed(
                    k,
                    format!("stores a {vt} value into {} of dtype {}", st.buf, b.dtype),
                ));
            }
        }
    }
    Ok((vals, accs))
}

/// Multiplies that fuse into their only consumer (see [`Plan::fused_muls`]).
fn fusable_muls(stage: &Stage, types: &HashMap<ValueId, DType>) -> HashSet<ValueId> {
    let mut uses: HashMap<ValueId, usize> = HashMap::new();
    for (_, inst) in &stage.insts {
        for v in inst.operands() {
            *uses.entry(v).or_default() += 1;
        }
    }
    for a in &stage.accumulators {
        match &a.reduction {
            Reduction::Fold { value, .. } => *uses.entry(*value).or_default() += 1,
            Reduction::ArgMax { value, index } => {
                *uses.entry(*value).or_default() += 1;
                *uses.entry(*index).or_default() += 1;
            }
        }
    }
    for st in &stage.stores {
        *uses.entry(st.value).or_default() += 1;
    }
    let is_mul: HashSet<ValueId> = stage
        .insts
        .iter()
        .filter(|(id, inst)| {
            matches!(inst, Inst::Binary { op: BinaryOp::Mul, .. })
                && types.get(id) == Some(&DType::F32)
                && uses.get(id) == Some(&1)
        })
        .map(|(id, _)| *id)
        .collect();
    let mut fused = HashSet::new();
    for (id, inst) in &stage.insts {
        if let Inst::Binary {
            op: BinaryOp::Add | BinaryOp::Sub,
            a,
            b,
        } = inst
        {
            if types.get(id) != Some(&DType::F32) {
                continue;
            }
            if is_mul.contains(a) && !fused.contains(a) && a != b {
                fused.insert(*a);
            } else if is_mul.contains(b) && !fused.contains(b) && a != b {
                fused.insert(*b);
            }
        }
    }
    for a in &stage.accumulators {
        if let Reduction::Fold {
            op: ReduceOp::Sum | ReduceOp::Mean,
            value,
        } = &a.reduction
        {
            if is_mul.contains(value) && !fused.contains(value) {
                fused.insert(*value);
            }
        }
    }
    fused
}

/// Uniformity of every value and accumulator. `vv[s]` is stage `s`'s vector variable
/// (`None`: the stage runs scalar, everything uniform); `inner` marks inner-loop
/// vectorisation, whose accumulators are combined to scalars after the stage.
fn uniformity(k: &LoopKernel, vv: &[Option<usize>], inner: bool) -> (HashMap<ValueId, bool>, HashMap<AccId, bool>) {
    let mut vals: HashMap<ValueId, bool> = HashMap::new();
    let mut accs: HashMap<AccId, bool> = HashMap::new();
    for (stage, &svv) in k.stages.iter().zip(vv) {
        let Some(vv) = svv else {
            for (id, _) in &stage.insts {
                vals.insert(*id, true);
            }
            for a in &stage.accumulators {
                accs.insert(a.id, true);
            }
            continue;
        };
        for (id, inst) in &stage.insts {
            let u = |v: ValueId| vals.get(&v).copied().unwrap_or(false);
            let uniform = match inst {
                Inst::Load { index, guards, .. } => {
                    classify(index, vv, &u) == IxClass::Uniform
                        && guards.iter().all(|g| classify(&g.expr, vv, &u) == IxClass::Uniform)
                }
                Inst::Index(e) => classify(e, vv, &u) == IxClass::Uniform,
                Inst::Scalar { .. } | Inst::Const { .. } => true,
                Inst::LoopVar(v) => *v != vv,
                Inst::Acc(a) => accs.get(a).copied().unwrap_or(false),
                Inst::Random { index, .. } => {
                    inst.operands().into_iter().all(u) && classify(index, vv, &u) == IxClass::Uniform
                }
                _ => inst.operands().into_iter().all(u),
            };
            vals.insert(*id, uniform);
        }
        for a in &stage.accumulators {
            let u = inner
                || match &a.reduction {
                    Reduction::Fold { value, .. } => vals.get(value).copied().unwrap_or(false),
                    Reduction::ArgMax { value, index } => {
                        vals.get(value).copied().unwrap_or(false) && vals.get(index).copied().unwrap_or(false)
                    }
                };
            accs.insert(a.id, u);
        }
    }
    (vals, accs)
}

/// Why stage `s` cannot run with vector variable `vv`, if it cannot.
fn stage_blocker(s: usize, stage: &Stage, vv: usize, uniform: &HashMap<ValueId, bool>) -> Option<String> {
    let u = |v: ValueId| uniform.get(&v).copied().unwrap_or(false);
    for (id, inst) in &stage.insts {
        if let Inst::Load { buf, index, .. } = inst {
            match classify(index, vv, &u) {
                IxClass::Uniform | IxClass::Affine(1) | IxClass::PerLane { from_var: false } => {}
                c => {
                    return Some(format!(
                        "stage {s}: {id} = load {buf}[{index}] is {c:?} in the vector variable i{vv}"
                    ))
                }
            }
        }
    }
    for st in &stage.stores {
        let c = classify(&st.index, vv, &u);
        if c != IxClass::Affine(1) {
            return Some(format!(
                "stage {s}: store {}[{}] is {c:?} in the vector variable i{vv}",
                st.buf, st.index
            ));
        }
    }
    None
}

fn work_estimate(k: &LoopKernel) -> usize {
    k.stages
        .iter()
        .map(|s| {
            let per = s.insts.len() + s.stores.len() + s.accumulators.len() + 1;
            per.saturating_mul(s.inner.iter().product::<usize>().max(1))
        })
        .fold(0usize, |a, b| a.saturating_add(b))
        .max(1)
}

fn infos<K: Copy + Eq + std::hash::Hash>(types: &HashMap<K, DType>, uniform: &HashMap<K, bool>) -> HashMap<K, ValInfo> {
    types
        .iter()
        .map(|(&v, &dtype)| {
            (
                v,
                ValInfo {
                    dtype,
                    uniform: uniform.get(&v).copied().unwrap_or(true),
                },
            )
        })
        .collect()
}

/// Vectorise the outer loop if every stage allows it; the reason when not.
fn outer_vector(k: &LoopKernel) -> Result<usize, String> {
    let Some(&last) = k.outer.last() else {
        return Err("no outer loop".into());
    };
    if last < 4 {
        return Err(format!("innermost outer extent {last} < 4 lanes"));
    }
    let vv = k.outer.len() - 1;
    let all = vec![Some(vv); k.stages.len()];
    let (uv, _) = uniformity(k, &all, false);
    for (s, stage) in k.stages.iter().enumerate() {
        if let Some(r) = stage_blocker(s, stage, vv, &uv) {
            return Err(r);
        }
    }
    Ok(vv)
}

/// Per stage, the inner variable to vectorise when the outer loop is scalar.
fn inner_vectors(k: &LoopKernel) -> Vec<Option<usize>> {
    let n = k.outer.len();
    let candidates: Vec<Option<usize>> = k
        .stages
        .iter()
        .map(|s| match s.inner.last() {
            Some(&e) if e >= 4 => Some(n + s.inner.len() - 1),
            _ => None,
        })
        .collect();
    let (uv, _) = uniformity(k, &candidates, true);
    k.stages
        .iter()
        .enumerate()
        .zip(&candidates)
        .map(|((s, stage), c)| c.filter(|&vv| stage_blocker(s, stage, vv, &uv).is_none()))
        .collect()
}

/// Analyse `k`. `simd`: whether vector loops may be used at all.
pub fn plan(p: &Program, k: &LoopKernel, simd: bool) -> Result<Plan, CodegenError> {
    let (types, acc_types) = dtypes(p, k)?;
    let mut fused_muls = HashSet::new();
    for stage in &k.stages {
        fused_muls.extend(fusable_muls(stage, &types));
    }
    let nstages = k.stages.len();
    let (vector_var, scalar_reason, stage_vector) = if !simd {
        (
            None,
            Some("SIMD disabled (options or ISA)".to_string()),
            vec![None; nstages],
        )
    } else {
        match outer_vector(k) {
            Ok(vv) => (Some(vv), None, vec![None; nstages]),
            Err(reason) => (None, Some(reason), inner_vectors(k)),
        }
    };
    let (uv, ua) = match vector_var {
        Some(vv) => uniformity(k, &vec![Some(vv); nstages], false),
        None => uniformity(k, &stage_vector, true),
    };
    Ok(Plan {
        vector_var,
        scalar_reason,
        stage_vector,
        values: infos(&types, &uv),
        accs: infos(&acc_types, &ua),
        fused_muls,
        work_per_point: work_estimate(k),
    })
}
