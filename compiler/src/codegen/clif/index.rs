//! Index expressions to i64 CLIF arithmetic, lane-aware: an index is uniform, affine in
//! the lane (`base + coef * lane`) or computed per lane, exactly as `plan::classify`
//! predicts. Also owns conservative value intervals of index expressions (used to pick
//! unsigned division when the dividend cannot be negative, and by `bounds`).
//! It must not emit loads or stores.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;

use crate::kernel::{IndexExpr, ValueId};

/// A loop variable's value while emitting a point.
#[derive(Clone, Copy, Debug)]
pub enum VarVal {
    /// An i64 scalar, the same in every lane.
    Uniform(Value),
    /// The vector variable: lane `l` holds `base + l`.
    Lanes(Value),
}

/// An emitted index (i64).
#[derive(Clone, Copy, Debug)]
pub enum Ix {
    Uniform(Value),
    /// `base + coef * lane`, `coef != 0`.
    Affine(Value, i64),
    PerLane([Value; 4]),
}

/// A closed interval of i64 values (saturating arithmetic; `i64::MIN/MAX` = unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub lo: i64,
    pub hi: i64,
}

impl Interval {
    pub const UNKNOWN_I32: Interval = Interval {
        lo: i32::MIN as i64,
        hi: i32::MAX as i64,
    };

    fn add(self, o: Interval) -> Interval {
        Interval {
            lo: self.lo.saturating_add(o.lo),
            hi: self.hi.saturating_add(o.hi),
        }
    }

    fn mul(self, c: i64) -> Interval {
        let (a, b) = (self.lo.saturating_mul(c), self.hi.saturating_mul(c));
        Interval {
            lo: a.min(b),
            hi: a.max(b),
        }
    }
}

/// Conservative interval of `e`. `var(k)` gives loop variable ranges; `known(e)` may
/// return a tighter interval for a sub-expression (e.g. established by a guard).
pub fn interval(
    e: &IndexExpr,
    var: &dyn Fn(usize) -> Interval,
    known: &dyn Fn(&IndexExpr) -> Option<Interval>,
) -> Interval {
    let raw = match e {
        IndexExpr::Var(k) => var(*k),
        IndexExpr::Const(c) => Interval { lo: *c, hi: *c },
        IndexExpr::Value(_) => Interval::UNKNOWN_I32,
        IndexExpr::Add(a, b) => interval(a, var, known).add(interval(b, var, known)),
        IndexExpr::Mul(a, c) => interval(a, var, known).mul(*c),
        IndexExpr::Div(a, c) => {
            let i = interval(a, var, known);
            let c = (*c).max(1);
            Interval {
                lo: i.lo.div_euclid(c),
                hi: i.hi.div_euclid(c),
            }
        }
        IndexExpr::Mod(a, c) => {
            let i = interval(a, var, known);
            let c = (*c).max(1);
            if i.lo >= 0 && i.hi < c {
                i
            } else if i.lo.div_euclid(c) == i.hi.div_euclid(c) {
                Interval {
                    lo: i.lo.rem_euclid(c),
                    hi: i.hi.rem_euclid(c),
                }
            } else {
                Interval { lo: 0, hi: c - 1 }
            }
        }
    };
    match known(e) {
        Some(k) => Interval {
            lo: raw.lo.max(k.lo),
            hi: raw.hi.min(k.hi),
        },
        None => raw,
    }
}

/// Everything index emission needs to know about the current point.
pub struct IndexEnv<'a> {
    pub vars: &'a [VarVal],
    /// Loop variable ranges (for division).
    pub extents: &'a [usize],
    /// An I32 kernel value: `Ok(scalar)` when uniform, `Err(vector)` when per lane.
    pub value: &'a dyn Fn(ValueId) -> Result<Value, Value>,
}

fn iconst(b: &mut FunctionBuilder, c: i64) -> Value {
    b.ins().iconst(types::I64, c)
}

/// Floor division / modulo of `x` by positive constant `c`; `nonneg` when `x >= 0`.
fn divmod(b: &mut FunctionBuilder, x: Value, c: i64, nonneg: bool, modulo: bool) -> Value {
    let cv = iconst(b, c);
    if nonneg {
        return if modulo {
            b.ins().urem(x, cv)
        } else {
            b.ins().udiv(x, cv)
        };
    }
    let q = b.ins().sdiv(x, cv);
    let prod = b.ins().imul(q, cv);
    let r = b.ins().isub(x, prod);
    let neg = b.ins().icmp_imm_s(IntCC::SignedLessThan, r, 0);
    if modulo {
        let fixed = b.ins().iadd(r, cv);
        b.ins().select(neg, fixed, r)
    } else {
        let fixed = b.ins().iadd_imm_s(q, -1);
        b.ins().select(neg, fixed, q)
    }
}

fn lanes_of(b: &mut FunctionBuilder, ix: Ix) -> [Value; 4] {
    match ix {
        Ix::Uniform(v) => [v; 4],
        Ix::Affine(base, c) => {
            let mut out = [base; 4];
            for (l, o) in out.iter_mut().enumerate().skip(1) {
                *o = b.ins().iadd_imm_s(base, c * l as i64);
            }
            out
        }
        Ix::PerLane(v) => v,
    }
}

/// The four lane values of an index.
pub fn per_lane(b: &mut FunctionBuilder, ix: Ix) -> [Value; 4] {
    lanes_of(b, ix)
}

/// Emit `e`. In scalar mode every variable is uniform and the result is `Ix::Uniform`.
pub fn emit_index(b: &mut FunctionBuilder, e: &IndexExpr, env: &IndexEnv) -> Ix {
    match e {
        IndexExpr::Var(k) => match env.vars[*k] {
            VarVal::Uniform(v) => Ix::Uniform(v),
            VarVal::Lanes(base) => Ix::Affine(base, 1),
        },
        IndexExpr::Const(c) => Ix::Uniform(iconst(b, *c)),
        IndexExpr::Value(v) => match (env.value)(*v) {
            Ok(s) => Ix::Uniform(b.ins().sextend(types::I64, s)),
            Err(vec) => {
                let mut out = [vec; 4];
                for (l, o) in out.iter_mut().enumerate() {
                    let s = b.ins().extractlane(vec, l as u8);
                    *o = b.ins().sextend(types::I64, s);
                }
                Ix::PerLane(out)
            }
        },
        IndexExpr::Add(x, y) => {
            let (ix, iy) = (emit_index(b, x, env), emit_index(b, y, env));
            match (ix, iy) {
                (Ix::Uniform(p), Ix::Uniform(q)) => Ix::Uniform(b.ins().iadd(p, q)),
                (Ix::Uniform(p), Ix::Affine(q, c)) | (Ix::Affine(q, c), Ix::Uniform(p)) => {
                    Ix::Affine(b.ins().iadd(p, q), c)
                }
                (Ix::Affine(p, c), Ix::Affine(q, d)) => {
                    let s = b.ins().iadd(p, q);
                    if c + d == 0 {
                        Ix::Uniform(s)
                    } else {
                        Ix::Affine(s, c + d)
                    }
                }
                (l, r) => {
                    let (l, r) = (lanes_of(b, l), lanes_of(b, r));
                    let mut out = l;
                    for i in 0..4 {
                        out[i] = b.ins().iadd(l[i], r[i]);
                    }
                    Ix::PerLane(out)
                }
            }
        }
        IndexExpr::Mul(x, c) => match emit_index(b, x, env) {
            Ix::Uniform(p) => Ix::Uniform(b.ins().imul_imm_s(p, *c)),
            Ix::Affine(p, d) => {
                let s = b.ins().imul_imm_s(p, *c);
                if d * c == 0 {
                    Ix::Uniform(s)
                } else {
                    Ix::Affine(s, d * c)
                }
            }
            Ix::PerLane(v) => {
                let mut out = v;
                for o in out.iter_mut() {
                    *o = b.ins().imul_imm_s(*o, *c);
                }
                Ix::PerLane(out)
            }
        },
        IndexExpr::Div(x, c) | IndexExpr::Mod(x, c) => {
            let modulo = matches!(e, IndexExpr::Mod(..));
            let var = |k: usize| Interval {
                lo: 0,
                hi: env.extents.get(k).map_or(i64::MAX, |&n| n as i64 - 1),
            };
            let nonneg = interval(x, &var, &|_| None).lo >= 0;
            match emit_index(b, x, env) {
                Ix::Uniform(p) => Ix::Uniform(divmod(b, p, *c, nonneg, modulo)),
                other => {
                    let mut out = lanes_of(b, other);
                    for o in out.iter_mut() {
                        *o = divmod(b, *o, *c, nonneg, modulo);
                    }
                    Ix::PerLane(out)
                }
            }
        }
    }
}
