//! C types and literals for kernel-IR values, and the dtype of every SSA value and
//! accumulator of a loop kernel. Owns the value <-> C mapping; it emits no statements.
//!
//! Mapping (registers / memory):
//! - F32 -> `float` / `float`;
//! - I32 -> `int` / `int`;
//! - Bool -> `bool` / `unsigned int` holding 0 or 1 (the kernel IR stores every element
//!   in 4 bytes);
//! - F16 / BF16 occur only as cast results and stay `float`: the reference evaluator's
//!   `DType::quantize` keeps their value unrounded, and the generated code must agree.

use std::collections::HashMap;

use kiln_ir::DType;

use super::CudaCodegenError;
use crate::kernel::{AccId, Inst, LoopKernel, Program, Reduction, ValueId};

/// The C type of a value of `t` held in a register.
pub(crate) fn reg_type(t: DType) -> &'static str {
    match t {
        DType::F32 | DType::F16 | DType::BF16 => "float",
        DType::I32 => "int",
        DType::Bool => "bool",
    }
}

/// The C element type of a buffer of `t`, or an error for dtypes the kernel IR does not
/// store (F16/BF16 buffers).
pub(crate) fn mem_type(kernel: &str, t: DType) -> Result<&'static str, CudaCodegenError> {
    match t {
        DType::F32 => Ok("float"),
        DType::I32 => Ok("int"),
        DType::Bool => Ok("unsigned int"),
        DType::F16 | DType::BF16 => Err(CudaCodegenError::Unsupported {
            kernel: kernel.to_string(),
            what: format!("a {t} buffer (the kernel IR stores f32, i32 and bool in 4 bytes; cast to f32 first)"),
        }),
    }
}

/// The 16-byte vector type of a buffer element type.
pub(crate) fn vec4_type(t: DType) -> &'static str {
    match t {
        DType::I32 => "int4",
        DType::Bool => "uint4",
        _ => "float4",
    }
}

/// A C expression turning a memory element (expression `m`) into a register value.
pub(crate) fn from_mem(t: DType, m: &str) -> String {
    match t {
        DType::Bool => format!("({m} != 0u)"),
        _ => m.to_string(),
    }
}

/// A C expression turning a register value `v` into a memory element.
pub(crate) fn to_mem(t: DType, v: &str) -> String {
    match t {
        DType::Bool => format!("({v} ? 1u : 0u)"),
        _ => v.to_string(),
    }
}

/// A C literal for `value` as a value of `t` (quantised like `DType::quantize`, then
/// rounded to the register type).
pub(crate) fn literal(value: f64, t: DType) -> String {
    match t {
        DType::F32 | DType::F16 | DType::BF16 => f32_literal(value as f32),
        DType::I32 => i32_literal(DType::I32.quantize(value) as i32),
        DType::Bool => (if DType::Bool.quantize(value) != 0.0 {
            "true"
        } else {
            "false"
        })
        .to_string(),
    }
}

/// The shortest literal that reads back as exactly `x` (inf/NaN through their bits).
pub(crate) fn f32_literal(x: f32) -> String {
    if x.is_finite() {
        let s = format!("{x:?}");
        // Rust prints e.g. "1.0", "0.1", "1e-8", "-2.5": all valid C once suffixed.
        let s = if s.contains(['.', 'e', 'E']) {
            format!("{s}f")
        } else {
            format!("{s}.0f")
        };
        if x.is_sign_negative() {
            format!("({s})")
        } else {
            s
        }
    } else {
        format!("__int_as_float(0x{:08x})", x.to_bits())
    }
}

pub(crate) fn i32_literal(x: i32) -> String {
    if x == i32::MIN {
        "(-2147483647 - 1)".to_string()
    } else if x < 0 {
        format!("({x})")
    } else {
        x.to_string()
    }
}

/// The dtype of every SSA value and accumulator of one loop kernel.
#[derive(Clone, Debug, Default)]
pub(crate) struct ValueTypes {
    values: HashMap<ValueId, DType>,
    accs: HashMap<AccId, DType>,
}

impl ValueTypes {
    /// Infers every value's dtype in definition order (operands are typed first because
    /// the kernel IR is SSA with definitions before uses).
    pub(crate) fn infer(p: &Program, k: &LoopKernel) -> Result<Self, CudaCodegenError> {
        let mut t = ValueTypes::default();
        let bad = |what: String| CudaCodegenError::Malformed {
            kernel: k.name.clone(),
            detail: what,
        };
        for stage in &k.stages {
            for a in &stage.accumulators {
                let dt = match a.reduction {
                    Reduction::Fold { .. } => a.dtype,
                    Reduction::ArgMax { .. } => DType::I32,
                };
                t.accs.insert(a.id, dt);
            }
        }
        for stage in &k.stages {
            for (id, inst) in &stage.insts {
                let of = |v: &ValueId| {
                    t.values
                        .get(v)
                        .copied()
                        .ok_or_else(|| bad(format!("{v} is used before it is defined")))
                };
                let dt = match inst {
                    Inst::Load { buf, .. } => {
                        p.buffers
                            .get(buf.0 as usize)
                            .ok_or_else(|| bad(format!("no buffer {buf}")))?
                            .dtype
                    }
                    Inst::Scalar { slot } => {
                        p.scalars
                            .get(*slot)
                            .ok_or_else(|| bad(format!("no scalar slot #{slot}")))?
                            .dtype
                    }
                    Inst::Const { dtype, .. } => *dtype,
                    Inst::LoopVar(_) | Inst::Index(_) => DType::I32,
                    Inst::Acc(a) => *t.accs.get(a).ok_or_else(|| bad(format!("no accumulator {a}")))?,
                    Inst::Unary { x, .. } => of(x)?,
                    Inst::Binary { a, .. } => of(a)?,
                    Inst::PowConst { .. } | Inst::Random { .. } => DType::F32,
                    Inst::Compare { .. } => DType::Bool,
                    Inst::Select { on_true, .. } => of(on_true)?,
                    Inst::Cast { to, .. } => *to,
                };
                if t.values.insert(*id, dt).is_some() {
                    return Err(bad(format!("{id} is defined twice")));
                }
            }
        }
        Ok(t)
    }

    pub(crate) fn value(&self, v: ValueId) -> DType {
        self.values.get(&v).copied().unwrap_or(DType::F32)
    }

    pub(crate) fn acc(&self, a: AccId) -> DType {
        self.accs.get(&a).copied().unwrap_or(DType::F32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_literals_round_trip() {
        assert_eq!(f32_literal(1.0), "1.0f");
        assert_eq!(f32_literal(0.1), "0.1f");
        assert_eq!(f32_literal(-2.5), "(-2.5f)");
        assert_eq!(f32_literal(1e-8), "1e-8f");
        assert_eq!(f32_literal(f32::INFINITY), "__int_as_float(0x7f800000)");
        assert_eq!(f32_literal(f32::NEG_INFINITY), "__int_as_float(0xff800000)");
        assert!(f32_literal(f32::NAN).starts_with("__int_as_float(0x7fc"));
        for x in [3.4028235e38f32, 1.1754944e-38, 1.0e-45, 123456.79, 0.3] {
            let s = f32_literal(x);
            let parsed: f32 = s.trim_end_matches('f').parse().unwrap();
            assert_eq!(parsed.to_bits(), x.to_bits(), "{s}");
        }
    }

    #[test]
    fn int_and_bool_literals() {
        assert_eq!(literal(-3.0, DType::I32), "(-3)");
        assert_eq!(literal(7.9, DType::I32), "7");
        assert_eq!(literal(i32::MIN as f64, DType::I32), "(-2147483647 - 1)");
        assert_eq!(literal(2.0, DType::Bool), "true");
        assert_eq!(literal(0.0, DType::Bool), "false");
    }
}
