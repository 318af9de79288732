//! Execution of one kernel for the evaluator: loop kernels point by point and stage by
//! stage, matmuls in f64 with their epilogue, with the race and epilogue checks. Owns
//! no storage (see `Memory`) and no scalar maths (see `scalar`).

use std::collections::{HashMap, HashSet};

use kiln_ir::philox::random_f64;
use kiln_ir::{DType, ReduceOp};

use super::scalar::{binary, compare, max_nan, min_nan, unary};
use super::{malformed, EvalError, Memory, Result, V};
use crate::kernel::{
    AccId, Accumulator, BufferId, IndexExpr, Inst, LoopKernel, MatMulKernel, MatOperand, Program, Reduction, ValueId,
};

/// Which outer point touched which root element, within one kernel.
#[derive(Default)]
struct Tracker {
    writes: HashMap<(usize, usize), u64>,
    reads: HashMap<(usize, usize), u64>,
}

const MANY: u64 = u64::MAX;

impl Tracker {
    fn read(&mut self, a: (usize, usize), point: u64) {
        let e = self.reads.entry(a).or_insert(point);
        if *e != point {
            *e = MANY;
        }
    }

    fn write(&mut self, kernel: &str, a: (usize, usize), point: u64) -> Result<()> {
        let e = self.writes.entry(a).or_insert(point);
        if *e != point {
            return Err(race(kernel, a, "two outer points write it"));
        }
        Ok(())
    }

    fn check(&self, kernel: &str) -> Result<()> {
        for (a, w) in &self.writes {
            if let Some(r) = self.reads.get(a) {
                if r != w {
                    return Err(race(kernel, *a, "one outer point writes what another reads"));
                }
            }
        }
        Ok(())
    }
}

fn race(kernel: &str, a: (usize, usize), detail: &str) -> EvalError {
    EvalError::Race {
        kernel: kernel.to_string(),
        buffer: BufferId(a.0 as u32),
        index: a.1,
        detail: detail.to_string(),
    }
}

/// Extra rules for a matmul epilogue.
pub(super) struct EpilogueRules<'a> {
    /// Root address of `out[0]`, and `out`'s length.
    out: (usize, usize, usize),
    /// Elements the matmul read.
    matmul_reads: &'a HashSet<(usize, usize)>,
}

fn unravel(mut flat: usize, dims: &[usize], into: &mut Vec<i64>) {
    let start = into.len();
    into.resize(start + dims.len(), 0);
    for (i, &d) in dims.iter().enumerate().rev() {
        let d = d.max(1);
        into[start + i] = (flat % d) as i64;
        flat /= d;
    }
}

pub(super) fn run_loop(
    p: &Program,
    k: &LoopKernel,
    scalars: &[V],
    mem: &mut Memory,
    rules: Option<&EpilogueRules>,
) -> Result<()> {
    let name = k.name.as_str();
    let mut seen = HashSet::new();
    let mut seen_acc = HashSet::new();
    let mut n_values = 0;
    for st in &k.stages {
        for (id, _) in &st.insts {
            if !seen.insert(*id) {
                return Err(malformed(name, format!("{id} is defined twice")));
            }
            n_values = n_values.max(id.0 as usize + 1);
        }
        for a in &st.accumulators {
            if !seen_acc.insert(a.id) {
                return Err(malformed(name, format!("{} is defined twice", a.id)));
            }
        }
    }
    let outer_total: usize = k.outer.iter().product();
    let mut tracker = Tracker::default();
    let mut vars = Vec::new();
    for o in 0..outer_total {
        let mut finished: HashMap<AccId, V> = HashMap::new();
        for stage in &k.stages {
            let mut states: Vec<AccState> = stage
                .accumulators
                .iter()
                .map(|a| AccState::new(name, a))
                .collect::<Result<_>>()?;
            let inner_total: usize = stage.inner.iter().product();
            for r in 0..inner_total {
                vars.clear();
                unravel(o, &k.outer, &mut vars);
                unravel(r, &stage.inner, &mut vars);
                let mut env: Vec<Option<V>> = vec![None; n_values];
                let cx = InstCx {
                    p,
                    kernel: name,
                    vars: &vars,
                    scalars,
                    finished: &finished,
                    point: o as u64,
                    rules,
                };
                for (id, inst) in &stage.insts {
                    let v = cx.eval(inst, &env, mem, &mut tracker)?;
                    env[id.0 as usize] = Some(v);
                }
                for (state, acc) in states.iter_mut().zip(&stage.accumulators) {
                    state.fold(name, acc, &env)?;
                }
                for st in &stage.stores {
                    let v = get(name, &env, st.value)?;
                    let buf = p
                        .buffers
                        .get(st.buf.0 as usize)
                        .ok_or_else(|| malformed(name, format!("store to missing buffer {}", st.buf)))?;
                    if v.t != buf.dtype {
                        return Err(malformed(
                            name,
                            format!("stores a {} value into {} of dtype {}", v.t, st.buf, buf.dtype),
                        ));
                    }
                    let index = cx.index(&st.index, &env)?;
                    let a = mem.addr(p, name, st.buf, index)?;
                    if let Some(rules) = rules {
                        if rules.matmul_reads.contains(&a) {
                            return Err(race(name, a, "the epilogue writes what its matmul reads"));
                        }
                    }
                    tracker.write(name, a, o as u64)?;
                    mem.store(a, buf.dtype.quantize(v.x));
                }
            }
            for (state, acc) in states.into_iter().zip(&stage.accumulators) {
                finished.insert(acc.id, state.finish(inner_total));
            }
        }
    }
    tracker.check(name)
}

fn get(kernel: &str, env: &[Option<V>], id: ValueId) -> Result<V> {
    env.get(id.0 as usize)
        .copied()
        .flatten()
        .ok_or_else(|| malformed(kernel, format!("{id} is used before it is defined in this stage")))
}

/// The state of one accumulator during a stage.
enum AccState {
    Fold { op: ReduceOp, t: DType, x: f64 },
    ArgMax { best: Option<(f64, f64)> },
}

impl AccState {
    fn new(kernel: &str, a: &Accumulator) -> Result<Self> {
        Ok(match &a.reduction {
            Reduction::Fold { op, .. } => {
                let int = a.dtype == DType::I32;
                if !a.dtype.is_numeric() || (int && *op == ReduceOp::Mean) {
                    return Err(malformed(kernel, format!("{} folds {op:?} over {}", a.id, a.dtype)));
                }
                let x = match op {
                    ReduceOp::Sum | ReduceOp::Mean => 0.0,
                    ReduceOp::Max if int => i32::MIN as f64,
                    ReduceOp::Max => f64::NEG_INFINITY,
                    ReduceOp::Min if int => i32::MAX as f64,
                    ReduceOp::Min => f64::INFINITY,
                };
                AccState::Fold { op: *op, t: a.dtype, x }
            }
            Reduction::ArgMax { .. } => {
                if a.dtype != DType::I32 {
                    return Err(malformed(kernel, format!("argmax {} must be i32", a.id)));
                }
                AccState::ArgMax { best: None }
            }
        })
    }

    fn fold(&mut self, kernel: &str, a: &Accumulator, env: &[Option<V>]) -> Result<()> {
        match (self, &a.reduction) {
            (AccState::Fold { op, t, x }, Reduction::Fold { value, .. }) => {
                let v = get(kernel, env, *value)?;
                if v.t != *t {
                    return Err(malformed(kernel, format!("{} ({t}) folds a {} value", a.id, v.t)));
                }
                *x = match op {
                    ReduceOp::Sum if *t == DType::I32 => (*x as i32).wrapping_add(v.x as i32) as f64,
                    ReduceOp::Sum | ReduceOp::Mean => *x + v.x,
                    ReduceOp::Max => max_nan(*x, v.x),
                    ReduceOp::Min => min_nan(*x, v.x),
                };
            }
            (AccState::ArgMax { best }, Reduction::ArgMax { value, index }) => {
                let v = get(kernel, env, *value)?;
                let i = get(kernel, env, *index)?;
                if !v.t.is_numeric() || i.t != DType::I32 {
                    return Err(malformed(
                        kernel,
                        format!("argmax {} needs a number and an i32 index", a.id),
                    ));
                }
                // First maximum wins; NaN counts as the maximum (the first NaN wins).
                match best {
                    None => *best = Some((v.x, i.x)),
                    Some((b, _)) if !b.is_nan() && (v.x.is_nan() || v.x > *b) => *best = Some((v.x, i.x)),
                    Some(_) => {}
                }
            }
            _ => unreachable!("states are built from their accumulators"),
        }
        Ok(())
    }

    fn finish(self, count: usize) -> V {
        match self {
            AccState::Fold {
                op: ReduceOp::Mean,
                t,
                x,
            } => V { x: x / count as f64, t },
            AccState::Fold { t, x, .. } => V { x, t },
            AccState::ArgMax { best } => V {
                x: best.map_or(0.0, |(_, i)| i),
                t: DType::I32,
            },
        }
    }
}

/// Everything one instruction may look at.
struct InstCx<'a> {
    p: &'a Program,
    kernel: &'a str,
    vars: &'a [i64],
    scalars: &'a [V],
    finished: &'a HashMap<AccId, V>,
    point: u64,
    rules: Option<&'a EpilogueRules<'a>>,
}

impl InstCx<'_> {
    fn index(&self, e: &IndexExpr, env: &[Option<V>]) -> Result<i64> {
        Ok(match e {
            IndexExpr::Var(k) => *self
                .vars
                .get(*k)
                .ok_or_else(|| malformed(self.kernel, format!("loop variable i{k} does not exist here")))?,
            IndexExpr::Const(c) => *c,
            IndexExpr::Add(a, b) => self.index(a, env)? + self.index(b, env)?,
            IndexExpr::Mul(a, c) => self.index(a, env)? * c,
            IndexExpr::Div(a, c) | IndexExpr::Mod(a, c) => {
                if *c <= 0 {
                    return Err(malformed(self.kernel, format!("division by {c} in an index")));
                }
                let x = self.index(a, env)?;
                if matches!(e, IndexExpr::Div(..)) {
                    x.div_euclid(*c)
                } else {
                    x.rem_euclid(*c)
                }
            }
            IndexExpr::Value(v) => {
                let v = get(self.kernel, env, *v)?;
                if v.t != DType::I32 {
                    return Err(malformed(self.kernel, format!("index uses a {} value", v.t)));
                }
                v.x as i64
            }
        })
    }

    fn eval(&self, inst: &Inst, env: &[Option<V>], mem: &Memory, tracker: &mut Tracker) -> Result<V> {
        let k = self.kernel;
        let arg = |id: &ValueId| get(k, env, *id);
        let bad = |detail: String| malformed(k, detail);
        Ok(match inst {
            Inst::Load {
                buf,
                index,
                guards,
                fill,
            } => {
                let b = self
                    .p
                    .buffers
                    .get(buf.0 as usize)
                    .ok_or_else(|| bad(format!("no buffer {buf}")))?;
                for g in guards {
                    let e = self.index(&g.expr, env)?;
                    if e < 0 || e >= g.upper {
                        return Ok(V {
                            x: b.dtype.quantize(*fill),
                            t: b.dtype,
                        });
                    }
                }
                let i = self.index(index, env)?;
                let a = mem.addr(self.p, k, *buf, i)?;
                if let Some(r) = self.rules {
                    let (root, off, len) = r.out;
                    if a.0 == root && a.1 >= off && a.1 < off + len && (a.1 - off) as u64 != self.point {
                        return Err(race(k, a, "the epilogue reads `out` away from its own element"));
                    }
                }
                tracker.read(a, self.point);
                V {
                    x: mem.load(k, *buf, i, a)?,
                    t: b.dtype,
                }
            }
            Inst::Scalar { slot } => *self
                .scalars
                .get(*slot)
                .ok_or_else(|| bad(format!("no scalar slot #{slot}")))?,
            Inst::Const { value, dtype } => V {
                x: dtype.quantize(*value),
                t: *dtype,
            },
            Inst::LoopVar(v) => V {
                x: self.index(&IndexExpr::Var(*v), env)? as f64,
                t: DType::I32,
            },
            Inst::Index(e) => V {
                x: self.index(e, env)? as f64,
                t: DType::I32,
            },
            Inst::Acc(a) => *self
                .finished
                .get(a)
                .ok_or_else(|| bad(format!("{a} is read before an earlier stage finished it")))?,
            Inst::Unary { op, x } => unary(k, *op, arg(x)?)?,
            Inst::Binary { op, a, b } => binary(k, *op, arg(a)?, arg(b)?)?,
            Inst::PowConst { x, exponent } => {
                let x = arg(x)?;
                if x.t != DType::F32 {
                    return Err(bad(format!("pow of a {} value", x.t)));
                }
                V {
                    x: x.x.powf(*exponent),
                    t: DType::F32,
                }
            }
            Inst::Compare { op, a, b } => compare(k, *op, arg(a)?, arg(b)?)?,
            Inst::Select {
                cond,
                on_true,
                on_false,
            } => {
                let (c, t, f) = (arg(cond)?, arg(on_true)?, arg(on_false)?);
                if c.t != DType::Bool || t.t != f.t {
                    return Err(bad(format!("select({}, {}, {}) is ill-typed", c.t, t.t, f.t)));
                }
                if c.x != 0.0 {
                    t
                } else {
                    f
                }
            }
            Inst::Cast { x, to } => V {
                x: to.quantize(arg(x)?.x),
                t: *to,
            },
            Inst::Random {
                dist,
                stream,
                seed,
                step,
                index,
            } => {
                let (s, t, k) = (arg(seed)?, arg(step)?, arg(stream)?);
                if s.t != DType::I32 || t.t != DType::I32 || k.t != DType::I32 {
                    return Err(bad("random needs i32 stream, seed and step".into()));
                }
                let i = self.index(index, env)?;
                if i < 0 {
                    return Err(bad(format!("random element index {i} is negative")));
                }
                V {
                    x: random_f64(*dist, s.x as i32, t.x as i32, k.x as i32 as u32, i as u64),
                    t: DType::F32,
                }
            }
        })
    }
}

pub(super) fn run_matmul(p: &Program, m: &MatMulKernel, scalars: &[V], mem: &mut Memory) -> Result<()> {
    let name = m.name.as_str();
    for (what, op) in [("a", &m.a), ("b", &m.b)] {
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
    }
    for id in [m.a.buf, m.b.buf, m.out] {
        let b = p
            .buffers
            .get(id.0 as usize)
            .ok_or_else(|| malformed(name, format!("no buffer {id}")))?;
        if b.dtype != DType::F32 {
            return Err(malformed(name, format!("matmul buffer {id} is {}, not f32", b.dtype)));
        }
    }
    let batch_total: usize = m.batch.iter().product();
    let mut reads = HashSet::new();
    let mut writes = Vec::new();
    let mut bidx = Vec::new();
    for bi in 0..batch_total {
        bidx.clear();
        unravel(bi, &m.batch, &mut bidx);
        let base = |op: &MatOperand| -> i64 {
            op.offset as i64
                + op.batch_strides
                    .iter()
                    .zip(&bidx)
                    .map(|(&s, &i)| s as i64 * i)
                    .sum::<i64>()
        };
        let (a0, b0) = (base(&m.a), base(&m.b));
        for i in 0..m.m as i64 {
            for j in 0..m.n as i64 {
                let mut acc = 0.0;
                for q in 0..m.k as i64 {
                    let ia = a0 + i * m.a.row_stride as i64 + q * m.a.col_stride as i64;
                    let ib = b0 + q * m.b.row_stride as i64 + j * m.b.col_stride as i64;
                    let aa = mem.addr(p, name, m.a.buf, ia)?;
                    let ab = mem.addr(p, name, m.b.buf, ib)?;
                    acc += mem.load(name, m.a.buf, ia, aa)? * mem.load(name, m.b.buf, ib, ab)?;
                    reads.insert(aa);
                    reads.insert(ab);
                }
                let o = ((bi as i64 * m.m as i64) + i) * m.n as i64 + j;
                let ao = mem.addr(p, name, m.out, o)?;
                writes.push((ao, acc));
            }
        }
    }
    // `out` is written block by block while the operands are still being read.
    for &(a, acc) in &writes {
        if reads.contains(&a) {
            return Err(race(name, a, "the matmul output overlaps its operands"));
        }
        mem.store(a, acc);
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
        let (root, off) = mem.loc[m.out.0 as usize];
        let rules = EpilogueRules {
            out: (root, off, batch_total * m.m * m.n),
            matmul_reads: &reads,
        };
        run_loop(p, e, scalars, mem, Some(&rules))?;
    }
    Ok(())
}
