//! Instruction emission: one kernel-IR [`Inst`] (and each store) at the current point,
//! lane-aware. Uniform values stay scalar and are broadcast only where a varying
//! operand needs them. Owns loads/stores (guards, gathers, contiguous vectors), the
//! elementwise op semantics (kiln's: max/min/relu propagate NaN, casts saturate, bools
//! are 0/1) and FMA contraction; loops and accumulators live in `loops`/`reduce`.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;
use kiln_ir::{BinaryOp, CompareOp, DType, UnaryOp};

use super::index::{emit_index, per_lane, IndexEnv, Ix, VarVal};
use super::lanes::{clif_type, HelperRefs, Lanes, Width};
use super::plan::Plan;
use super::{math, philox};
use crate::kernel::{BufferId, Guard, IndexExpr, Inst, LoopKernel, Program, Store, ValueId};

/// A kernel value at the current point.
#[derive(Clone, Copy, Debug)]
pub enum Val {
    /// The same in every lane: a scalar.
    U(Value),
    /// Four lanes.
    V(Value),
}

/// The loop variables of the current point.
pub struct Point {
    /// Width of the loop body being emitted (`X4` in the vector main loop).
    pub w: Width,
    pub vars: Vec<VarVal>,
    pub extents: Vec<usize>,
}

/// Values defined so far in the current stage iteration.
pub type Env = HashMap<ValueId, Val>;

pub struct Emitter<'a, 'f> {
    pub b: FunctionBuilder<'f>,
    pub p: &'a Program,
    pub k: &'a LoopKernel,
    pub plan: &'a Plan,
    pub fma: bool,
    pub helpers: HelperRefs,
    /// Base pointers of the buffers the kernel touches (loaded in the entry block).
    pub bufs: HashMap<BufferId, Value>,
    /// Runtime scalar slots (f32, i32, or i8 0/1 for bool), loaded in the entry block.
    pub scalars: HashMap<usize, Value>,
    /// Operands of multiplies fused into their consumer.
    pub mul_operands: HashMap<ValueId, (ValueId, ValueId)>,
}

fn data_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

impl<'a, 'f> Emitter<'a, 'f> {
    pub fn lanes(&mut self, w: Width) -> Lanes<'_, 'f> {
        Lanes::new(&mut self.b, w, self.fma, self.helpers)
    }

    pub fn dtype(&self, v: ValueId) -> DType {
        self.plan.values[&v].dtype
    }

    /// `v` as four lanes (broadcasting a uniform value).
    pub fn vector(&mut self, v: Val, dtype: DType) -> Value {
        match v {
            Val::V(x) => x,
            Val::U(s) => {
                let ty = clif_type(dtype, Width::X4).expect("checked by plan");
                let s = if dtype == DType::Bool {
                    let wide = self.b.ins().uextend(types::I32, s);
                    self.b.ins().ineg(wide)
                } else {
                    s
                };
                self.b.ins().splat(ty, s)
            }
        }
    }

    /// Bring operands to one width: all scalar when all are uniform, else all vectors.
    pub fn unify(&mut self, ops: &[(Val, DType)]) -> (Width, Vec<Value>) {
        if ops.iter().all(|(v, _)| matches!(v, Val::U(_))) {
            let vals = ops
                .iter()
                .map(|(v, _)| match v {
                    Val::U(x) => *x,
                    Val::V(_) => unreachable!(),
                })
                .collect();
            (Width::Scalar, vals)
        } else {
            let vals = ops.iter().map(|&(v, t)| self.vector(v, t)).collect();
            (Width::X4, vals)
        }
    }

    fn wrap(w: Width, v: Value) -> Val {
        match w {
            Width::Scalar => Val::U(v),
            Width::X4 => Val::V(v),
        }
    }

    fn get(&self, env: &Env, v: ValueId) -> (Val, DType) {
        (env[&v], self.dtype(v))
    }

    /// Emit an index expression at the current point.
    pub fn index(&mut self, pt: &Point, env: &Env, e: &IndexExpr) -> Ix {
        let lookup = |v: ValueId| match env[&v] {
            Val::U(s) => Ok(s),
            Val::V(x) => Err(x),
        };
        let ienv = IndexEnv {
            vars: &pt.vars,
            extents: &pt.extents,
            value: &lookup,
        };
        emit_index(&mut self.b, e, &ienv)
    }

    fn addr(&mut self, buf: BufferId, idx: Value) -> Value {
        let base = self.bufs[&buf];
        let off = self.b.ins().ishl_imm_u(idx, 2);
        self.b.ins().iadd(base, off)
    }

    /// Raw load of one element (`w = Scalar`) or four contiguous ones, converted to the
    /// register representation of `dtype`.
    fn raw_load(&mut self, w: Width, dtype: DType, addr: Value) -> Value {
        let mem_ty: Type = match (dtype, w) {
            (DType::F32, Width::Scalar) => types::F32,
            (DType::F32, Width::X4) => types::F32X4,
            (_, Width::Scalar) => types::I32,
            (_, Width::X4) => types::I32X4,
        };
        let v = self.b.ins().load(mem_ty, data_flags(), addr, 0);
        if dtype == DType::Bool {
            self.lanes(w).int_to_bool(v)
        } else {
            v
        }
    }

    /// `fill` as a constant of `dtype` at width `w`.
    fn constant(&mut self, w: Width, dtype: DType, value: f64) -> Value {
        let q = dtype.quantize(value);
        let mut l = self.lanes(w);
        match dtype {
            _ if dtype.is_float() => l.f(q as f32),
            DType::I32 => l.i(q as i32),
            _ => match w {
                Width::Scalar => l.b.ins().iconst(types::I8, q as i64),
                Width::X4 => l.i(if q != 0.0 { -1 } else { 0 }),
            },
        }
    }

    /// `0 <= g < upper` for one lane value (i8 bool).
    fn guard_ok(&mut self, g: Value, upper: i64) -> Value {
        if upper <= 0 {
            return self.b.ins().iconst(types::I8, 0);
        }
        self.b.ins().icmp_imm_s(IntCC::UnsignedLessThan, g, upper)
    }

    fn guarded_scalar_load(&mut self, dtype: DType, buf: BufferId, idx: Value, conds: &[Value], fill: f64) -> Value {
        if conds.is_empty() {
            let a = self.addr(buf, idx);
            return self.raw_load(Width::Scalar, dtype, a);
        }
        let mut ok = conds[0];
        for &c in &conds[1..] {
            ok = self.b.ins().band(ok, c);
        }
        // Guarded loads also check the buffer's range at run time (see bounds.rs): the
        // static checker cannot always prove "guards hold => index in range".
        let len = self.p.buffers[buf.0 as usize].len as i64;
        let in_range = self.guard_ok(idx, len);
        ok = self.b.ins().band(ok, in_range);
        let real = self.addr(buf, idx);
        let safe = self.bufs[&buf];
        let a = self.b.ins().select(ok, real, safe);
        let v = self.raw_load(Width::Scalar, dtype, a);
        let f = self.constant(Width::Scalar, dtype, fill);
        self.b.ins().select(ok, v, f)
    }

    fn load(&mut self, pt: &Point, env: &Env, buf: BufferId, index: &IndexExpr, guards: &[Guard], fill: f64) -> Val {
        let dtype = self.p.buffers[buf.0 as usize].dtype;
        let ix = self.index(pt, env, index);
        let gix: Vec<(Ix, i64)> = guards.iter().map(|g| (self.index(pt, env, &g.expr), g.upper)).collect();
        let guards_uniform = gix.iter().all(|(g, _)| matches!(g, Ix::Uniform(_)));
        match ix {
            Ix::Uniform(idx) if guards_uniform => {
                let conds: Vec<Value> = gix
                    .iter()
                    .map(|&(g, up)| match g {
                        Ix::Uniform(g) => self.guard_ok(g, up),
                        _ => unreachable!(),
                    })
                    .collect();
                Val::U(self.guarded_scalar_load(dtype, buf, idx, &conds, fill))
            }
            Ix::Affine(base, 1) if guards_uniform && pt.w == Width::X4 => {
                let real = self.addr(buf, base);
                if gix.is_empty() {
                    return Val::V(self.raw_load(Width::X4, dtype, real));
                }
                let mut ok = None;
                for &(g, up) in &gix {
                    let Ix::Uniform(g) = g else { unreachable!() };
                    let c = self.guard_ok(g, up);
                    ok = Some(match ok {
                        None => c,
                        Some(o) => self.b.ins().band(o, c),
                    });
                }
                let ok = ok.expect("guards present");
                // All four lanes must lie in the buffer (see guarded_scalar_load).
                let len = self.p.buffers[buf.0 as usize].len as i64;
                let in_range = self.guard_ok(base, len - 3);
                let ok = self.b.ins().band(ok, in_range);
                let safe = self.bufs[&buf];
                let a = self.b.ins().select(ok, real, safe);
                let v = self.raw_load(Width::X4, dtype, a);
                let f = self.constant(Width::X4, dtype, fill);
                // Broadcast the scalar condition to a lane mask.
                let wide = self.b.ins().uextend(types::I32, ok);
                let m = self.b.ins().ineg(wide);
                let m = self.b.ins().splat(types::I32X4, m);
                Val::V(self.lanes(Width::X4).select(m, v, f))
            }
            ix => {
                // Gather lane by lane.
                let idx = per_lane(&mut self.b, ix);
                let glanes: Vec<([Value; 4], i64)> =
                    gix.iter().map(|&(g, up)| (per_lane(&mut self.b, g), up)).collect();
                let mut out: Option<Value> = None;
                for l in 0..4 {
                    let conds: Vec<Value> = glanes.iter().map(|(g, up)| self.guard_ok(g[l], *up)).collect();
                    let s = self.guarded_scalar_load(dtype, buf, idx[l], &conds, fill);
                    out = Some(self.insert_lane(out, s, l as u8, dtype));
                }
                Val::V(out.expect("four lanes"))
            }
        }
    }

    /// Build a vector lane by lane (`acc = None` starts a new one).
    fn insert_lane(&mut self, acc: Option<Value>, s: Value, lane: u8, dtype: DType) -> Value {
        let ty = clif_type(dtype, Width::X4).expect("checked by plan");
        let s = if dtype == DType::Bool {
            let wide = self.b.ins().uextend(types::I32, s);
            self.b.ins().ineg(wide)
        } else {
            s
        };
        match acc {
            None => self.b.ins().scalar_to_vector(ty, s),
            Some(v) => self.b.ins().insertlane(v, s, lane),
        }
    }

    /// An i32 value from an index (iota, one-hot, argmax positions).
    fn index_value(&mut self, ix: Ix) -> Val {
        match ix {
            Ix::Uniform(v) => Val::U(self.b.ins().ireduce(types::I32, v)),
            Ix::Affine(base, c) => {
                let b32 = self.b.ins().ireduce(types::I32, base);
                let bv = self.b.ins().splat(types::I32X4, b32);
                let c = c as i32;
                let steps = self
                    .lanes(Width::X4)
                    .i32x4_const([0, c, c.wrapping_mul(2), c.wrapping_mul(3)]);
                Val::V(self.b.ins().iadd(bv, steps))
            }
            Ix::PerLane(v) => {
                let mut out = None;
                for (l, &x) in v.iter().enumerate() {
                    let s = self.b.ins().ireduce(types::I32, x);
                    out = Some(self.insert_lane(out, s, l as u8, DType::I32));
                }
                Val::V(out.expect("four lanes"))
            }
        }
    }

    /// Emit one instruction.
    pub fn inst(&mut self, pt: &Point, env: &Env, inst: &Inst) -> Val {
        match inst {
            Inst::Load {
                buf,
                index,
                guards,
                fill,
            } => self.load(pt, env, *buf, index, guards, *fill),
            Inst::Scalar { slot } => Val::U(self.scalars[slot]),
            Inst::Const { value, dtype } => Val::U(self.constant(Width::Scalar, *dtype, *value)),
            Inst::LoopVar(k) => {
                let ix = match pt.vars[*k] {
                    VarVal::Uniform(v) => Ix::Uniform(v),
                    VarVal::Lanes(b) => Ix::Affine(b, 1),
                };
                self.index_value(ix)
            }
            Inst::Index(e) => {
                let ix = self.index(pt, env, e);
                self.index_value(ix)
            }
            Inst::Acc(_) => unreachable!("accumulator reads are resolved by the stage emitter"),
            Inst::Unary { op, x } => {
                let (xv, t) = self.get(env, *x);
                let (w, v) = self.unify(&[(xv, t)]);
                let r = unary(&mut self.lanes(w), *op, t, v[0]);
                Self::wrap(w, r)
            }
            Inst::Binary { op, a, b } => self.binary(env, *op, *a, *b),
            Inst::PowConst { x, exponent } => {
                let (xv, t) = self.get(env, *x);
                let (w, v) = self.unify(&[(xv, t)]);
                let r = math::pow_const(&mut self.lanes(w), v[0], *exponent);
                Self::wrap(w, r)
            }
            Inst::Compare { op, a, b } => {
                let (av, t) = self.get(env, *a);
                let (bv, _) = self.get(env, *b);
                let (w, v) = self.unify(&[(av, t), (bv, t)]);
                let r = compare(&mut self.lanes(w), *op, t, v[0], v[1]);
                Self::wrap(w, r)
            }
            Inst::Select {
                cond,
                on_true,
                on_false,
            } => {
                let c = self.get(env, *cond);
                let t = self.get(env, *on_true);
                let f = self.get(env, *on_false);
                let (w, v) = self.unify(&[c, t, f]);
                let r = self.lanes(w).select(v[0], v[1], v[2]);
                Self::wrap(w, r)
            }
            Inst::Cast { x, to } => {
                let (xv, t) = self.get(env, *x);
                let (w, v) = self.unify(&[(xv, t)]);
                let r = cast(&mut self.lanes(w), t, *to, v[0]);
                Self::wrap(w, r)
            }
            Inst::Random {
                dist,
                stream,
                seed,
                step,
                index,
            } => {
                let ix = self.index(pt, env, index);
                let s = self.get(env, *seed);
                let st = self.get(env, *step);
                let k = self.get(env, *stream);
                let (w, v) = match ix {
                    Ix::Uniform(_) => self.unify(&[s, st, k]),
                    _ => {
                        let vs = vec![self.vector(s.0, s.1), self.vector(st.0, st.1), self.vector(k.0, k.1)];
                        (Width::X4, vs)
                    }
                };
                let (lo, hi) = if w == Width::X4 && matches!(ix, Ix::Uniform(_)) {
                    // A uniform index with a per-lane stream: the same words in every lane.
                    let (lo, hi) = self.index_words(Width::Scalar, ix);
                    (self.vector(Val::U(lo), DType::I32), self.vector(Val::U(hi), DType::I32))
                } else {
                    self.index_words(w, ix)
                };
                let r = philox::random(&mut self.lanes(w), *dist, v[2], v[0], v[1], lo, hi);
                Self::wrap(w, r)
            }
        }
    }

    /// Low and high 32-bit words of an index at width `w` (`w = Scalar` only for uniform).
    fn index_words(&mut self, w: Width, ix: Ix) -> (Value, Value) {
        let lanes: Vec<Value> = match (w, ix) {
            (Width::Scalar, Ix::Uniform(v)) => vec![v],
            (_, ix) => per_lane(&mut self.b, ix).to_vec(),
        };
        let mut lo = None;
        let mut hi = None;
        for (l, &x) in lanes.iter().enumerate() {
            let lo_s = self.b.ins().ireduce(types::I32, x);
            let sh = self.b.ins().ushr_imm_u(x, 32);
            let hi_s = self.b.ins().ireduce(types::I32, sh);
            if w == Width::Scalar {
                return (lo_s, hi_s);
            }
            lo = Some(self.insert_lane(lo, lo_s, l as u8, DType::I32));
            hi = Some(self.insert_lane(hi, hi_s, l as u8, DType::I32));
        }
        (lo.expect("lanes"), hi.expect("lanes"))
    }

    fn binary(&mut self, env: &Env, op: BinaryOp, a: ValueId, b: ValueId) -> Val {
        let t = self.dtype(a);
        let (fa, fb) = (self.mul_operands.get(&a).copied(), self.mul_operands.get(&b).copied());
        if t == DType::F32 && matches!(op, BinaryOp::Add | BinaryOp::Sub) {
            if let Some((x, y)) = fa {
                // x*y + b  or  x*y - b
                let ops = [self.get(env, x), self.get(env, y), self.get(env, b)];
                let (w, v) = self.unify(&ops);
                let mut l = self.lanes(w);
                let c = if op == BinaryOp::Sub {
                    l.b.ins().fneg(v[2])
                } else {
                    v[2]
                };
                let r = l.mul_add(v[0], v[1], c);
                return Self::wrap(w, r);
            }
            if let Some((x, y)) = fb {
                // a + x*y  or  a - x*y = (-x)*y + a
                let ops = [self.get(env, x), self.get(env, y), self.get(env, a)];
                let (w, v) = self.unify(&ops);
                let mut l = self.lanes(w);
                let xx = if op == BinaryOp::Sub {
                    l.b.ins().fneg(v[0])
                } else {
                    v[0]
                };
                let r = l.mul_add(xx, v[1], v[2]);
                return Self::wrap(w, r);
            }
        }
        let (av, _) = self.get(env, a);
        let (bv, _) = self.get(env, b);
        let (w, v) = self.unify(&[(av, t), (bv, t)]);
        let r = binary(&mut self.lanes(w), op, t, v[0], v[1]);
        Self::wrap(w, r)
    }

    /// Emit a store at the current point.
    pub fn store(&mut self, pt: &Point, env: &Env, st: &Store) {
        let dtype = self.p.buffers[st.buf.0 as usize].dtype;
        let ix = self.index(pt, env, &st.index);
        let val = env[&st.value];
        match (ix, val) {
            (Ix::Uniform(idx), Val::U(v)) => {
                let v = if dtype == DType::Bool {
                    self.b.ins().uextend(types::I32, v)
                } else {
                    v
                };
                let a = self.addr(st.buf, idx);
                self.b.ins().store(data_flags(), v, a, 0);
            }
            (Ix::Affine(base, 1), val) => {
                let v = self.vector(val, dtype);
                let v = if dtype == DType::Bool {
                    self.lanes(Width::X4).and_c(v, 1)
                } else {
                    v
                };
                let a = self.addr(st.buf, base);
                self.b.ins().store(data_flags(), v, a, 0);
            }
            (ix, val) => {
                // Scatter lane by lane, in lane order.
                let idx = per_lane(&mut self.b, ix);
                let v = self.vector(val, dtype);
                for (l, &i) in idx.iter().enumerate() {
                    let s = self.b.ins().extractlane(v, l as u8);
                    let s = if dtype == DType::Bool {
                        self.b.ins().band_imm_u(s, 1)
                    } else {
                        s
                    };
                    let a = self.addr(st.buf, i);
                    self.b.ins().store(data_flags(), s, a, 0);
                }
            }
        }
    }
}

/// Elementwise unary op at the lanes' width.
pub fn unary(l: &mut Lanes, op: UnaryOp, t: DType, x: Value) -> Value {
    if t == DType::I32 {
        return match op {
            UnaryOp::Neg => l.b.ins().ineg(x),
            UnaryOp::Abs => l.b.ins().iabs(x),
            UnaryOp::Sign => {
                let z = l.i(0);
                let gt = l.icmp(IntCC::SignedGreaterThan, x, z);
                let lt = l.icmp(IntCC::SignedLessThan, x, z);
                let gt = l.bool_to_i01(gt);
                let lt = l.bool_to_i01(lt);
                l.isub(gt, lt)
            }
            UnaryOp::Relu => {
                let z = l.i(0);
                l.b.ins().smax(x, z)
            }
            _ => unreachable!("plan admits only neg/abs/sign/relu on i32"),
        };
    }
    match op {
        UnaryOp::Neg => l.b.ins().fneg(x),
        UnaryOp::Exp => math::exp(l, x),
        UnaryOp::Log => math::log(l, x),
        UnaryOp::Sqrt => l.b.ins().sqrt(x),
        UnaryOp::Rsqrt => {
            let s = l.b.ins().sqrt(x);
            let one = l.f(1.0);
            l.div(one, s)
        }
        UnaryOp::Recip => {
            let one = l.f(1.0);
            l.div(one, x)
        }
        UnaryOp::Abs => l.b.ins().fabs(x),
        UnaryOp::Sign => {
            let z = l.f(0.0);
            let (one, mone) = (l.f(1.0), l.f(-1.0));
            let gt = l.fcmp(FloatCC::GreaterThan, x, z);
            let r = l.select(gt, one, x);
            let lt = l.fcmp(FloatCC::LessThan, x, z);
            l.select(lt, mone, r)
        }
        UnaryOp::Tanh => math::tanh(l, x),
        UnaryOp::Sigmoid => math::sigmoid(l, x),
        UnaryOp::Relu => {
            let z = l.f(0.0);
            let keep = l.fcmp(FloatCC::UnorderedOrGreaterThan, x, z);
            l.select(keep, x, z)
        }
        UnaryOp::Sin => math::sin(l, x),
        UnaryOp::Cos => math::cos(l, x),
    }
}

/// Elementwise binary op; f32 max/min propagate NaN.
pub fn binary(l: &mut Lanes, op: BinaryOp, t: DType, a: Value, b: Value) -> Value {
    if t == DType::I32 {
        return match op {
            BinaryOp::Add => l.b.ins().iadd(a, b),
            BinaryOp::Sub => l.b.ins().isub(a, b),
            BinaryOp::Mul => l.b.ins().imul(a, b),
            BinaryOp::Max => l.b.ins().smax(a, b),
            BinaryOp::Min => l.b.ins().smin(a, b),
            BinaryOp::Div => unreachable!("plan rejects i32 division"),
        };
    }
    match op {
        BinaryOp::Add => l.add(a, b),
        BinaryOp::Sub => l.sub(a, b),
        BinaryOp::Mul => l.mul(a, b),
        BinaryOp::Div => l.div(a, b),
        BinaryOp::Max => math::max_nan(l, a, b),
        BinaryOp::Min => math::min_nan(l, a, b),
    }
}

/// Comparison; the result is a bool at the lanes' width.
pub fn compare(l: &mut Lanes, op: CompareOp, t: DType, a: Value, b: Value) -> Value {
    match t {
        _ if t.is_float() => {
            let cc = match op {
                CompareOp::Lt => FloatCC::LessThan,
                CompareOp::Le => FloatCC::LessThanOrEqual,
                CompareOp::Gt => FloatCC::GreaterThan,
                CompareOp::Ge => FloatCC::GreaterThanOrEqual,
                CompareOp::Eq => FloatCC::Equal,
                // NaN != anything is true.
                CompareOp::Ne => FloatCC::NotEqual,
            };
            l.fcmp(cc, a, b)
        }
        _ => {
            // i32 compares signed; bools (0/1 or 0/all-ones masks) compare unsigned.
            let signed = t == DType::I32;
            let cc = match (op, signed) {
                (CompareOp::Lt, true) => IntCC::SignedLessThan,
                (CompareOp::Le, true) => IntCC::SignedLessThanOrEqual,
                (CompareOp::Gt, true) => IntCC::SignedGreaterThan,
                (CompareOp::Ge, true) => IntCC::SignedGreaterThanOrEqual,
                (CompareOp::Lt, false) => IntCC::UnsignedLessThan,
                (CompareOp::Le, false) => IntCC::UnsignedLessThanOrEqual,
                (CompareOp::Gt, false) => IntCC::UnsignedGreaterThan,
                (CompareOp::Ge, false) => IntCC::UnsignedGreaterThanOrEqual,
                (CompareOp::Eq, _) => IntCC::Equal,
                (CompareOp::Ne, _) => IntCC::NotEqual,
            };
            l.icmp(cc, a, b)
        }
    }
}

/// Dtype conversion with `DType::quantize` semantics.
pub fn cast(l: &mut Lanes, from: DType, to: DType, x: Value) -> Value {
    // f16/bf16 live in f32 registers unrounded (see `lanes::clif_type`).
    let norm = |d: DType| if d.is_float() { DType::F32 } else { d };
    let (from, to) = (norm(from), norm(to));
    match (from, to) {
        _ if from == to => x,
        (DType::F32, DType::I32) => l.f2i_sat(x),
        (DType::F32, DType::Bool) => {
            let z = l.f(0.0);
            l.fcmp(FloatCC::NotEqual, x, z)
        }
        (DType::I32, DType::F32) => l.i2f(x),
        (DType::I32, DType::Bool) => l.int_to_bool(x),
        (DType::Bool, DType::F32) => {
            let (one, zero) = (l.f(1.0), l.f(0.0));
            l.select(x, one, zero)
        }
        (DType::Bool, DType::I32) => l.bool_to_i01(x),
        _ => unreachable!("plan rejects f16/bf16"),
    }
}
