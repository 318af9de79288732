//! One kernel-IR instruction, accumulator fold or store as CUDA C, with the reference
//! evaluator's semantics (see `kernel::eval::scalar`): wrapping i32 arithmetic,
//! NaN-propagating max/min, the overflow-free sigmoid, saturating float -> i32 casts
//! (NaN -> 0), casts to f16/bf16 that keep the value (as `DType::quantize` does).
//! Owns per-instruction text; loops, thread mapping and vector lanes belong to the
//! kernel emitters, which tell it how values and loop variables are spelled.

use kiln_ir::{BinaryOp, CompareOp, DType, Distribution, ReduceOp, UnaryOp};

use super::index::{render, IndexNames};
use super::types::{from_mem, literal, reg_type, to_mem, ValueTypes};
use super::CudaCodegenError;
use crate::kernel::{Accumulator, BufferId, Inst, Program, Reduction, Store, ValueId};

/// How the current lane spells SSA values and loop variables.
pub(crate) struct Names<'a> {
    pub value: &'a dyn Fn(ValueId) -> String,
    pub var: &'a dyn Fn(usize) -> String,
}

/// Per-kernel context of instruction emission.
pub(crate) struct Body<'a> {
    pub p: &'a Program,
    pub kernel: &'a str,
    pub types: &'a ValueTypes,
    /// `int` or `long long`.
    pub idx: &'static str,
    /// A matmul epilogue's output buffer and the register holding this point's result:
    /// unguarded loads of it read the register instead of memory.
    pub forward: Option<(BufferId, String)>,
}

impl Body<'_> {
    fn unsupported(&self, what: String) -> CudaCodegenError {
        CudaCodegenError::Unsupported {
            kernel: self.kernel.to_string(),
            what,
        }
    }

    /// Render an index expression for loop-variable extents `extents`.
    pub(crate) fn index(&self, e: &crate::kernel::IndexExpr, n: &Names, extents: &[usize]) -> String {
        render(
            e,
            &IndexNames {
                var: n.var,
                value: n.value,
                idx: self.idx,
                extents,
            },
        )
    }

    /// The bounds test of a guarded load, or `None` when it has no guards.
    pub(crate) fn guard(&self, guards: &[crate::kernel::Guard], n: &Names, extents: &[usize]) -> Option<String> {
        if guards.is_empty() {
            return None;
        }
        let tests: Vec<String> = guards
            .iter()
            .map(|g| {
                let e = self.index(&g.expr, n, extents);
                if self.idx == "int" && g.upper > i32::MAX as i64 {
                    // An int is always below the bound: only the lower one remains.
                    format!("({e} >= 0)")
                } else if self.idx == "int" {
                    format!("kiln_in({e}, {})", g.upper)
                } else {
                    format!("kiln_in({e}, ({}){})", self.idx, g.upper)
                }
            })
            .collect();
        Some(tests.join(" && "))
    }

    /// The C expression of `inst` (every instruction except loads handled by a vector
    /// path), of the register type of its result.
    pub(crate) fn expr(&self, inst: &Inst, n: &Names, extents: &[usize]) -> Result<String, CudaCodegenError> {
        let v = |x: &ValueId| (n.value)(*x);
        let t = |x: &ValueId| self.types.value(*x);
        Ok(match inst {
            Inst::Load {
                buf,
                index,
                guards,
                fill,
            } => {
                let dt = self.p.buffers[buf.0 as usize].dtype;
                let forwarded = match &self.forward {
                    Some((out, reg)) if out == buf && guards.is_empty() => Some(reg.clone()),
                    _ => None,
                };
                let load = match forwarded {
                    Some(reg) => reg,
                    None => from_mem(dt, &format!("{buf}[{}]", self.index(index, n, extents))),
                };
                match self.guard(guards, n, extents) {
                    Some(g) => format!("({g}) ? {load} : {}", literal(*fill, dt)),
                    None => load,
                }
            }
            Inst::Scalar { slot } => {
                let dt = self.p.scalars[*slot].dtype;
                from_mem(dt, &format!("s{slot}"))
            }
            Inst::Const { value, dtype } => literal(*value, *dtype),
            Inst::LoopVar(k) => self.as_int((n.var)(*k)),
            Inst::Index(e) => self.as_int(self.index(e, n, extents)),
            Inst::Acc(a) => format!("{a}"),
            Inst::Unary { op, x } => self.unary(*op, t(x), &v(x))?,
            Inst::Binary { op, a, b } => self.binary(*op, t(a), &v(a), &v(b))?,
            Inst::PowConst { x, exponent } => {
                if t(x) != DType::F32 {
                    return Err(self.unsupported(format!("pow of a {} value", t(x))));
                }
                pow_const(&v(x), *exponent)
            }
            Inst::Compare { op, a, b } => {
                let c = match op {
                    CompareOp::Lt => "<",
                    CompareOp::Le => "<=",
                    CompareOp::Gt => ">",
                    CompareOp::Ge => ">=",
                    CompareOp::Eq => "==",
                    CompareOp::Ne => "!=",
                };
                format!("({} {c} {})", v(a), v(b))
            }
            Inst::Select {
                cond,
                on_true,
                on_false,
            } => format!("({} ? {} : {})", v(cond), v(on_true), v(on_false)),
            Inst::Cast { x, to } => cast(t(x), *to, &v(x)),
            Inst::Random {
                dist,
                stream,
                seed,
                step,
                index,
            } => {
                let f = match dist {
                    Distribution::Uniform => "kiln_random_uniform",
                    Distribution::Normal => "kiln_random_normal",
                };
                format!(
                    "{f}({}, {}, (unsigned int)({}), (unsigned long long)({}))",
                    v(seed),
                    v(step),
                    v(stream),
                    self.index(index, n, extents)
                )
            }
        })
    }

    fn as_int(&self, s: String) -> String {
        if self.idx == "int" {
            s
        } else {
            format!("(int)({s})")
        }
    }

    fn unary(&self, op: UnaryOp, t: DType, x: &str) -> Result<String, CudaCodegenError> {
        Ok(match t {
            DType::I32 => match op {
                UnaryOp::Neg => format!("kiln_ineg({x})"),
                UnaryOp::Abs => format!("kiln_iabs({x})"),
                UnaryOp::Sign => format!("kiln_isign({x})"),
                UnaryOp::Relu => format!("max({x}, 0)"),
                _ => return Err(self.unsupported(format!("{op:?} of an i32 value"))),
            },
            DType::F32 => match op {
                UnaryOp::Neg => format!("-{x}"),
                UnaryOp::Exp => format!("expf({x})"),
                UnaryOp::Log => format!("logf({x})"),
                UnaryOp::Sqrt => format!("sqrtf({x})"),
                UnaryOp::Rsqrt => format!("rsqrtf({x})"),
                UnaryOp::Recip => format!("kiln_fdiv(1.0f, {x})"),
                UnaryOp::Abs => format!("fabsf({x})"),
                UnaryOp::Sign => format!("kiln_signf({x})"),
                UnaryOp::Tanh => format!("tanhf({x})"),
                UnaryOp::Sigmoid => format!("kiln_sigmoidf({x})"),
                UnaryOp::Relu => format!("kiln_reluf({x})"),
                UnaryOp::Sin => format!("sinf({x})"),
                UnaryOp::Cos => format!("cosf({x})"),
            },
            t => return Err(self.unsupported(format!("{op:?} of a {t} value"))),
        })
    }

    fn binary(&self, op: BinaryOp, t: DType, a: &str, b: &str) -> Result<String, CudaCodegenError> {
        Ok(match t {
            DType::I32 => match op {
                BinaryOp::Add => format!("kiln_iadd({a}, {b})"),
                BinaryOp::Sub => format!("kiln_isub({a}, {b})"),
                BinaryOp::Mul => format!("kiln_imul({a}, {b})"),
                BinaryOp::Max => format!("max({a}, {b})"),
                BinaryOp::Min => format!("min({a}, {b})"),
                BinaryOp::Div => return Err(self.unsupported("Div of i32 values".into())),
            },
            DType::F32 => match op {
                BinaryOp::Add => format!("{a} + {b}"),
                BinaryOp::Sub => format!("{a} - {b}"),
                BinaryOp::Mul => format!("{a} * {b}"),
                BinaryOp::Div => format!("kiln_fdiv({a}, {b})"),
                BinaryOp::Max => format!("kiln_fmaxf({a}, {b})"),
                BinaryOp::Min => format!("kiln_fminf({a}, {b})"),
            },
            t => return Err(self.unsupported(format!("{op:?} of {t} values"))),
        })
    }

    /// `const T name = expr;` for instruction `id`.
    pub(crate) fn def(
        &self,
        id: ValueId,
        inst: &Inst,
        n: &Names,
        extents: &[usize],
    ) -> Result<String, CudaCodegenError> {
        let ty = reg_type(self.types.value(id));
        Ok(format!(
            "const {ty} {} = {};",
            (n.value)(id),
            self.expr(inst, n, extents)?
        ))
    }

    /// The store statement (with the kernel-IR store as a trailing comment).
    pub(crate) fn store(&self, s: &Store, n: &Names, extents: &[usize]) -> Result<String, CudaCodegenError> {
        let buf = self
            .p
            .buffers
            .get(s.buf.0 as usize)
            .ok_or_else(|| CudaCodegenError::Malformed {
                kernel: self.kernel.to_string(),
                detail: format!("store to missing buffer {}", s.buf),
            })?;
        let vt = self.types.value(s.value);
        if vt != buf.dtype {
            return Err(CudaCodegenError::Malformed {
                kernel: self.kernel.to_string(),
                detail: format!("stores a {vt} value into {} of dtype {}", s.buf, buf.dtype),
            });
        }
        Ok(format!(
            "{}[{}] = {};",
            s.buf,
            self.index(&s.index, n, extents),
            to_mem(buf.dtype, &(n.value)(s.value))
        ))
    }
}

/// `x ** e` for a constant exponent; small integer exponents are multiplied out.
fn pow_const(x: &str, e: f64) -> String {
    if e == 1.0 {
        x.to_string()
    } else if e == 2.0 {
        format!("{x} * {x}")
    } else if e == 3.0 {
        format!("{x} * {x} * {x}")
    } else if e == -1.0 {
        format!("kiln_fdiv(1.0f, {x})")
    } else if e == -2.0 {
        format!("kiln_fdiv(1.0f, {x} * {x})")
    } else if e == 0.0 {
        "1.0f".to_string()
    } else {
        format!("powf({x}, {})", literal(e, DType::F32))
    }
}

/// A cast with `DType::quantize` semantics.
fn cast(from: DType, to: DType, x: &str) -> String {
    let float = |t: DType| matches!(t, DType::F32 | DType::F16 | DType::BF16);
    match (from, to) {
        (f, t) if float(f) && float(t) => x.to_string(),
        (DType::I32, t) if float(t) => format!("(float){x}"),
        (DType::Bool, t) if float(t) => format!("({x} ? 1.0f : 0.0f)"),
        // PTX cvt.rzi.s32.f32 truncates, saturates and maps NaN to 0, like quantize.
        (f, DType::I32) if float(f) => format!("__float2int_rz({x})"),
        (DType::Bool, DType::I32) => format!("(int){x}"),
        (DType::I32, DType::I32) | (DType::Bool, DType::Bool) => x.to_string(),
        (f, DType::Bool) if float(f) => format!("({x} != 0.0f)"),
        (_, DType::Bool) => format!("({x} != 0)"),
        _ => x.to_string(),
    }
}

/// The C of accumulators: identity, folding one value, combining two partials.
pub(crate) struct AccCode {
    /// Running state variable (a `kiln_argmax` for argmax).
    pub state: String,
    /// Register type of the running state.
    pub state_type: &'static str,
    pub identity: String,
}

impl AccCode {
    pub(crate) fn new(a: &Accumulator, types: &ValueTypes) -> Self {
        match &a.reduction {
            Reduction::Fold { op, .. } => {
                let t = types.acc(a.id);
                let identity = match (op, t) {
                    (ReduceOp::Sum | ReduceOp::Mean, DType::I32) => "0".into(),
                    (ReduceOp::Sum | ReduceOp::Mean, _) => "0.0f".into(),
                    (ReduceOp::Max, DType::I32) => literal(i32::MIN as f64, DType::I32),
                    (ReduceOp::Max, _) => literal(f64::NEG_INFINITY, DType::F32),
                    (ReduceOp::Min, DType::I32) => literal(i32::MAX as f64, DType::I32),
                    (ReduceOp::Min, _) => literal(f64::INFINITY, DType::F32),
                };
                AccCode {
                    state: format!("{}", a.id),
                    state_type: reg_type(t),
                    identity,
                }
            }
            Reduction::ArgMax { .. } => AccCode {
                state: format!("{}_state", a.id),
                state_type: "kiln_argmax",
                identity: "kiln_argmax_empty()".into(),
            },
        }
    }
}

/// `state = op(state, x)` for a fold, as an expression of the combined value.
pub(crate) fn fold_op(op: ReduceOp, t: DType, state: &str, x: &str) -> String {
    match (op, t) {
        (ReduceOp::Sum | ReduceOp::Mean, DType::I32) => format!("kiln_iadd({state}, {x})"),
        (ReduceOp::Sum | ReduceOp::Mean, _) => format!("{state} + {x}"),
        (ReduceOp::Max, DType::I32) => format!("max({state}, {x})"),
        (ReduceOp::Max, _) => format!("kiln_fmaxf({state}, {x})"),
        (ReduceOp::Min, DType::I32) => format!("min({state}, {x})"),
        (ReduceOp::Min, _) => format!("kiln_fminf({state}, {x})"),
    }
}

/// The statement folding this point's value(s) into accumulator `a`; `pos` is the
/// point's position in the stage's iteration order (argmax only).
pub(crate) fn fold_stmt(a: &Accumulator, types: &ValueTypes, n: &Names, pos: &str) -> Result<String, CudaCodegenError> {
    let code = AccCode::new(a, types);
    Ok(match &a.reduction {
        Reduction::Fold { op, value } => {
            let t = types.acc(a.id);
            format!("{} = {};", code.state, fold_op(*op, t, &code.state, &(n.value)(*value)))
        }
        Reduction::ArgMax { value, index } => format!(
            "kiln_argmax_push({}, (double){}, {}, (int){pos});",
            code.state,
            (n.value)(*value),
            (n.value)(*index)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_follow_quantize() {
        assert_eq!(cast(DType::F32, DType::I32, "x"), "__float2int_rz(x)");
        assert_eq!(cast(DType::F32, DType::Bool, "x"), "(x != 0.0f)");
        assert_eq!(cast(DType::Bool, DType::F32, "x"), "(x ? 1.0f : 0.0f)");
        assert_eq!(cast(DType::F32, DType::F16, "x"), "x");
        assert_eq!(cast(DType::I32, DType::Bool, "x"), "(x != 0)");
    }

    #[test]
    fn pow_of_small_integers_is_multiplied_out() {
        assert_eq!(pow_const("v", 2.0), "v * v");
        assert_eq!(pow_const("v", -1.0), "kiln_fdiv(1.0f, v)");
        assert_eq!(pow_const("v", 0.5), "powf(v, 0.5f)");
    }
}
