//! Accumulators: initialisation with the identity of their reduction, the per-point
//! fold and the finished value readable by later stages. Semantics follow the kernel-IR
//! evaluator: sums fold in inner-loop order (i32 wraps), max/min propagate NaN, mean is
//! sum / number of inner points, argmax keeps the first maximum and treats NaN as the
//! maximum (the first NaN wins). Each lane of a vector accumulator belongs to its own
//! outer point, so the order per point is the sequential one.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{InstBuilder, Value};
use cranelift_frontend::Variable;
use kiln_ir::{DType, ReduceOp};

use super::emit::{Emitter, Env, Val};
use super::lanes::{clif_type, Width};
use super::math;
use crate::kernel::{Accumulator, Reduction};

/// An accumulator's registers during a stage.
pub struct AccSlot {
    /// Width of the accumulator (scalar when uniform).
    pub w: Width,
    /// Dtype of the folded values.
    pub value_t: DType,
    /// Best/sum so far.
    pub acc: Variable,
    /// Argmax: index of the best value so far.
    pub idx: Option<Variable>,
}

impl<'a, 'f> Emitter<'a, 'f> {
    fn lift(&mut self, w: Width, v: Val, t: DType) -> Value {
        match (w, v) {
            (Width::Scalar, Val::U(s)) => s,
            (Width::Scalar, Val::V(_)) => unreachable!("a uniform accumulator folds only uniform values"),
            (Width::X4, v) => self.vector(v, t),
        }
    }

    /// Declare and initialise the registers of `a` (before the stage's inner loops).
    pub fn acc_init(&mut self, a: &Accumulator, point_w: Width) -> AccSlot {
        let uniform = self.plan.accs[&a.id].uniform;
        let w = if uniform { Width::Scalar } else { point_w };
        self.acc_init_at(a, w)
    }

    /// Registers of `a` at width `w`, initialised to the reduction's identity.
    pub fn acc_init_at(&mut self, a: &Accumulator, w: Width) -> AccSlot {
        let (value_t, op) = match &a.reduction {
            Reduction::Fold { op, value } => (self.dtype(*value), Some(*op)),
            Reduction::ArgMax { value, .. } => (self.dtype(*value), None),
        };
        let ty = clif_type(value_t, w).expect("checked by plan");
        let acc = self.b.declare_var(ty);
        let init = {
            let mut l = self.lanes(w);
            match (value_t, op) {
                (DType::I32, Some(ReduceOp::Sum | ReduceOp::Mean)) => l.i(0),
                (DType::I32, Some(ReduceOp::Max) | None) => l.i(i32::MIN),
                (DType::I32, Some(ReduceOp::Min)) => l.i(i32::MAX),
                (_, Some(ReduceOp::Sum | ReduceOp::Mean)) => l.f(0.0),
                (_, Some(ReduceOp::Max) | None) => l.f(f32::NEG_INFINITY),
                (_, Some(ReduceOp::Min)) => l.f(f32::INFINITY),
            }
        };
        self.b.def_var(acc, init);
        let idx = if op.is_none() {
            let ity = clif_type(DType::I32, w).expect("i32");
            let v = self.b.declare_var(ity);
            let zero = self.lanes(w).i(0);
            self.b.def_var(v, zero);
            Some(v)
        } else {
            None
        };
        AccSlot { w, value_t, acc, idx }
    }

    /// Fold the current inner point's value(s) into `slot`.
    pub fn acc_fold(&mut self, a: &Accumulator, slot: &AccSlot, env: &Env) {
        let w = slot.w;
        let cur = self.b.use_var(slot.acc);
        match &a.reduction {
            Reduction::Fold { op, value } => {
                let t = slot.value_t;
                let new = match (op, self.mul_operands.get(value).copied()) {
                    (ReduceOp::Sum | ReduceOp::Mean, Some((x, y))) => {
                        let xv = self.lift(w, env[&x], t);
                        let yv = self.lift(w, env[&y], t);
                        self.lanes(w).mul_add(xv, yv, cur)
                    }
                    _ => {
                        let v = self.lift(w, env[value], t);
                        let mut l = self.lanes(w);
                        match (op, t) {
                            (ReduceOp::Sum | ReduceOp::Mean, DType::I32) => l.iadd(cur, v),
                            (ReduceOp::Sum | ReduceOp::Mean, _) => l.add(cur, v),
                            (ReduceOp::Max, DType::I32) => l.b.ins().smax(cur, v),
                            (ReduceOp::Min, DType::I32) => l.b.ins().smin(cur, v),
                            (ReduceOp::Max, _) => math::max_nan(&mut l, cur, v),
                            (ReduceOp::Min, _) => math::min_nan(&mut l, cur, v),
                        }
                    }
                };
                self.b.def_var(slot.acc, new);
            }
            Reduction::ArgMax { value, index } => {
                let t = slot.value_t;
                let v = self.lift(w, env[value], t);
                let i = self.lift(w, env[index], DType::I32);
                let idx_var = slot.idx.expect("argmax has an index register");
                let best_i = self.b.use_var(idx_var);
                let mut l = self.lanes(w);
                let take = if t == DType::I32 {
                    l.icmp(IntCC::SignedGreaterThan, v, cur)
                } else {
                    // !isnan(best) && (isnan(v) || v > best)
                    let ord = l.fcmp(FloatCC::Ordered, cur, cur);
                    let gt = l.fcmp(FloatCC::UnorderedOrGreaterThan, v, cur);
                    l.and(ord, gt)
                };
                let nb = l.select(take, v, cur);
                let ni = l.select(take, i, best_i);
                self.b.def_var(slot.acc, nb);
                self.b.def_var(idx_var, ni);
            }
        }
    }

    /// The finished value (after the stage's loops); `count` is its inner point count.
    pub fn acc_finish(&mut self, a: &Accumulator, slot: &AccSlot, count: usize) -> Val {
        let w = slot.w;
        let v = match &a.reduction {
            Reduction::ArgMax { .. } => self.b.use_var(slot.idx.expect("argmax index")),
            Reduction::Fold { op: ReduceOp::Mean, .. } => {
                let s = self.b.use_var(slot.acc);
                let mut l = self.lanes(w);
                let n = l.f(count as f32);
                l.div(s, n)
            }
            Reduction::Fold { .. } => self.b.use_var(slot.acc),
        };
        match w {
            Width::Scalar => Val::U(v),
            Width::X4 => Val::V(v),
        }
    }

    /// Finish an inner-vectorised accumulator: fold the four partial lanes (in lane
    /// order) and then the scalar tail into one uniform value. Argmax keeps the first
    /// maximum (NaN first): among the candidates the largest value wins, ties and NaNs
    /// go to the smallest index.
    pub fn acc_combine(&mut self, a: &Accumulator, partial: &AccSlot, tail: &AccSlot, count: usize) -> Val {
        let t = partial.value_t;
        let pv = self.b.use_var(partial.acc);
        let tv = self.b.use_var(tail.acc);
        let lanes: Vec<Value> = (0..4u8).map(|l| self.b.ins().extractlane(pv, l)).collect();
        let v = match &a.reduction {
            Reduction::Fold { op, .. } => {
                let mut l = self.lanes(Width::Scalar);
                let fold = |l: &mut super::lanes::Lanes, x: Value, y: Value| match (op, t) {
                    (ReduceOp::Sum | ReduceOp::Mean, DType::I32) => l.iadd(x, y),
                    (ReduceOp::Sum | ReduceOp::Mean, _) => l.add(x, y),
                    (ReduceOp::Max, DType::I32) => l.b.ins().smax(x, y),
                    (ReduceOp::Min, DType::I32) => l.b.ins().smin(x, y),
                    (ReduceOp::Max, _) => math::max_nan(l, x, y),
                    (ReduceOp::Min, _) => math::min_nan(l, x, y),
                };
                let lo = fold(&mut l, lanes[0], lanes[1]);
                let hi = fold(&mut l, lanes[2], lanes[3]);
                let all = fold(&mut l, lo, hi);
                let r = fold(&mut l, all, tv);
                if *op == ReduceOp::Mean {
                    let n = l.f(count as f32);
                    l.div(r, n)
                } else {
                    r
                }
            }
            Reduction::ArgMax { .. } => {
                let pi = self.b.use_var(partial.idx.expect("argmax index"));
                let ti = self.b.use_var(tail.idx.expect("argmax index"));
                let idx: Vec<Value> = (0..4u8).map(|l| self.b.ins().extractlane(pi, l)).collect();
                let mut l = self.lanes(Width::Scalar);
                let (mut best, mut best_i) = (lanes[0], idx[0]);
                for (v, i) in lanes[1..].iter().zip(&idx[1..]).chain([(&tv, &ti)]) {
                    let earlier = l.icmp(IntCC::SignedLessThan, *i, best_i);
                    let take = if t == DType::I32 {
                        let gt = l.icmp(IntCC::SignedGreaterThan, *v, best);
                        let eq = l.icmp(IntCC::Equal, *v, best);
                        let tie = l.and(eq, earlier);
                        l.or(gt, tie)
                    } else {
                        // take = nan(v) ? (nan(best) ? earlier : true)
                        //               : (!nan(best) && (v > best || (v == best && earlier)))
                        let v_nan = l.fcmp(FloatCC::Unordered, *v, *v);
                        let b_nan = l.fcmp(FloatCC::Unordered, best, best);
                        let gt = l.fcmp(FloatCC::GreaterThan, *v, best);
                        let eq = l.fcmp(FloatCC::Equal, *v, best);
                        let tie = l.and(eq, earlier);
                        let better = l.or(gt, tie);
                        let if_nan = l.b.ins().select(b_nan, earlier, v_nan);
                        let not_bnan = l.not(b_nan);
                        let if_num = l.and(not_bnan, better);
                        l.b.ins().select(v_nan, if_nan, if_num)
                    };
                    best = l.select(take, *v, best);
                    best_i = l.select(take, *i, best_i);
                }
                best_i
            }
        };
        Val::U(v)
    }
}
