//! The width abstraction of the Cranelift backend: every arithmetic helper here works on
//! either one f32/i32 (`Width::Scalar`) or four lanes (`Width::X4`, f32x4/i32x4), so the
//! math library, Philox and the instruction emitter are written once for both the
//! vector main loop and the scalar tail.
//!
//! Representation of kernel values in registers:
//! - `F32` -> `f32` / `f32x4`; `I32` -> `i32` / `i32x4`;
//! - `Bool` -> `i8` holding 0/1 (the result type of scalar `icmp`/`fcmp`) / an `i32x4`
//!   lane mask (all ones = true, the result type of vector compares).
//!
//! FMA: [`Lanes::mul_add`] emits `fma` only when the ISA has it; otherwise a multiply
//! and an add (Cranelift would turn `fma` into a libcall per lane). This module knows
//! nothing of kernels, buffers or loops.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::immediates::Ieee32;
use cranelift_codegen::ir::{types, ConstantData, Endianness, InstBuilder, MemFlagsData, SigRef, Type, Value};
use cranelift_frontend::FunctionBuilder;
use kiln_ir::DType;

/// Lanes processed by one instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    Scalar,
    X4,
}

impl Width {
    pub fn lanes(self) -> usize {
        match self {
            Width::Scalar => 1,
            Width::X4 => 4,
        }
    }
}

/// The Cranelift type holding a kernel value of `dtype` at width `w` (see the module doc).
/// f16/bf16 values (casts that a kernel undoes before storing) are held as f32: the
/// kernel IR's `quantize` leaves them unrounded, so the cast is the identity.
pub fn clif_type(dtype: DType, w: Width) -> Option<Type> {
    Some(match (dtype, w) {
        (DType::F32 | DType::F16 | DType::BF16, Width::Scalar) => types::F32,
        (DType::F32 | DType::F16 | DType::BF16, Width::X4) => types::F32X4,
        (DType::I32, Width::Scalar) => types::I32,
        (DType::I32, Width::X4) => types::I32X4,
        (DType::Bool, Width::Scalar) => types::I8,
        (DType::Bool, Width::X4) => types::I32X4,
    })
}

/// Where out-of-line helpers are reached from generated code (see `abi::Helper`).
#[derive(Clone, Copy, Debug)]
pub struct HelperRefs {
    /// Pointer to the helper table (an array of function pointers).
    pub table: Value,
    /// `extern "C" fn(f32) -> f32`.
    pub sig_unary: SigRef,
    /// `extern "C" fn(f32, f64) -> f32`.
    pub sig_pow: SigRef,
    /// `extern "C" fn(f32, *const *const u8) -> f32` (generated support functions).
    pub sig_math: SigRef,
    pub ptr_ty: Type,
    /// Call the program's support functions for scalar transcendentals instead of
    /// expanding them inline (used in the cold scalar tails of vector loops).
    pub outline: bool,
}

/// A function builder viewed at one width.
pub struct Lanes<'a, 'f> {
    pub b: &'a mut FunctionBuilder<'f>,
    pub w: Width,
    /// Whether `fma` is a native instruction.
    pub fma: bool,
    pub helpers: HelperRefs,
}

impl<'a, 'f> Lanes<'a, 'f> {
    pub fn new(b: &'a mut FunctionBuilder<'f>, w: Width, fma: bool, helpers: HelperRefs) -> Self {
        Lanes { b, w, fma, helpers }
    }

    pub fn fty(&self) -> Type {
        match self.w {
            Width::Scalar => types::F32,
            Width::X4 => types::F32X4,
        }
    }

    pub fn ity(&self) -> Type {
        match self.w {
            Width::Scalar => types::I32,
            Width::X4 => types::I32X4,
        }
    }

    /// Broadcast a scalar of the lane type to the current width.
    pub fn splat(&mut self, ty: Type, s: Value) -> Value {
        match self.w {
            Width::Scalar => s,
            Width::X4 => self.b.ins().splat(ty, s),
        }
    }

    /// f32 constant at the current width.
    pub fn f(&mut self, c: f32) -> Value {
        let s = self.b.ins().f32const(Ieee32::with_float(c));
        let ty = self.fty();
        self.splat(ty, s)
    }

    /// i32 constant at the current width.
    pub fn i(&mut self, c: i32) -> Value {
        let s = self.b.ins().iconst(types::I32, c as i64);
        let ty = self.ity();
        self.splat(ty, s)
    }

    /// A constant i32x4 vector (only at width X4).
    pub fn i32x4_const(&mut self, lanes: [i32; 4]) -> Value {
        let bytes: Vec<u8> = lanes.iter().flat_map(|l| l.to_le_bytes()).collect();
        let c = self.b.func.dfg.constants.insert(ConstantData::from(bytes));
        self.b.ins().vconst(types::I32X4, c)
    }

    pub fn add(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fadd(a, b)
    }
    pub fn sub(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fsub(a, b)
    }
    pub fn mul(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fmul(a, b)
    }
    pub fn div(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fdiv(a, b)
    }

    /// `a * b + c`, fused (one rounding) when the ISA has FMA.
    pub fn mul_add(&mut self, a: Value, b: Value, c: Value) -> Value {
        if self.fma {
            self.b.ins().fma(a, b, c)
        } else {
            let p = self.b.ins().fmul(a, b);
            self.b.ins().fadd(p, c)
        }
    }

    /// `a * b + c` with constant `b`, `c` (polynomial steps).
    pub fn mul_add_c(&mut self, a: Value, b: Value, c: f32) -> Value {
        let c = self.f(c);
        self.mul_add(a, b, c)
    }

    /// Horner evaluation of `coeffs[0]*x^n + ... + coeffs[n]`.
    pub fn horner(&mut self, x: Value, coeffs: &[f32]) -> Value {
        let mut acc = self.f(coeffs[0]);
        for &c in &coeffs[1..] {
            acc = self.mul_add_c(acc, x, c);
        }
        acc
    }

    /// Float compare; a bool at the current width (i8 0/1 or an i32x4 mask).
    pub fn fcmp(&mut self, cc: FloatCC, a: Value, b: Value) -> Value {
        self.b.ins().fcmp(cc, a, b)
    }

    /// Integer compare; a bool at the current width.
    pub fn icmp(&mut self, cc: IntCC, a: Value, b: Value) -> Value {
        self.b.ins().icmp(cc, a, b)
    }

    /// `cond ? a : b` lane-wise; `cond` is a bool at the current width.
    pub fn select(&mut self, cond: Value, a: Value, b: Value) -> Value {
        match self.w {
            Width::Scalar => self.b.ins().select(cond, a, b),
            Width::X4 => {
                let ty = self.b.func.dfg.value_type(a);
                let c = if ty == types::I32X4 {
                    cond
                } else {
                    self.b.ins().bitcast(ty, MemFlagsData::new(), cond)
                };
                self.b.ins().bitselect(c, a, b)
            }
        }
    }

    pub fn and(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().band(a, b)
    }
    pub fn or(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().bor(a, b)
    }
    pub fn xor(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().bxor(a, b)
    }

    /// Logical not of a bool at the current width.
    pub fn not(&mut self, m: Value) -> Value {
        match self.w {
            Width::Scalar => self.b.ins().bxor_imm_u(m, 1),
            Width::X4 => self.b.ins().bnot(m),
        }
    }

    /// Reinterpret f32 lanes as i32 lanes.
    pub fn to_bits(&mut self, x: Value) -> Value {
        let ty = self.ity();
        self.b.ins().bitcast(ty, MemFlagsData::new(), x)
    }

    /// Reinterpret i32 lanes as f32 lanes.
    pub fn from_bits(&mut self, x: Value) -> Value {
        let ty = self.fty();
        self.b.ins().bitcast(ty, MemFlagsData::new(), x)
    }

    /// i32 lanes to f32 (round to nearest even).
    pub fn i2f(&mut self, x: Value) -> Value {
        let ty = self.fty();
        self.b.ins().fcvt_from_sint(ty, x)
    }

    /// f32 lanes to i32, truncating toward zero, saturating, NaN -> 0.
    pub fn f2i_sat(&mut self, x: Value) -> Value {
        let ty = self.ity();
        self.b.ins().fcvt_to_sint_sat(ty, x)
    }

    pub fn iadd(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().iadd(a, b)
    }
    pub fn isub(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().isub(a, b)
    }
    pub fn shl(&mut self, a: Value, n: i64) -> Value {
        self.b.ins().ishl_imm_u(a, n)
    }
    pub fn ushr(&mut self, a: Value, n: i64) -> Value {
        self.b.ins().ushr_imm_u(a, n)
    }
    pub fn sshr(&mut self, a: Value, n: i64) -> Value {
        self.b.ins().sshr_imm_u(a, n)
    }
    pub fn and_c(&mut self, a: Value, c: i32) -> Value {
        let c = self.i(c);
        self.b.ins().band(a, c)
    }

    /// Whether any lane of a bool is true, as a scalar i8 usable by `brif`.
    pub fn any(&mut self, m: Value) -> Value {
        match self.w {
            Width::Scalar => m,
            Width::X4 => self.b.ins().vany_true(m),
        }
    }

    /// A bool as i32 0/1 lanes.
    pub fn bool_to_i01(&mut self, m: Value) -> Value {
        match self.w {
            Width::Scalar => self.b.ins().uextend(types::I32, m),
            Width::X4 => self.and_c(m, 1),
        }
    }

    /// i32 lanes holding 0/nonzero as a bool.
    pub fn int_to_bool(&mut self, x: Value) -> Value {
        let z = self.i(0);
        self.b.ins().icmp(IntCC::NotEqual, x, z)
    }

    /// Copy the sign bit of `sign` onto the non-negative `mag` (bitwise).
    pub fn with_sign_of(&mut self, mag: Value, sign: Value) -> Value {
        let sb = self.to_bits(sign);
        let sb = self.and_c(sb, i32::MIN);
        let mb = self.to_bits(mag);
        let r = self.or(mb, sb);
        self.from_bits(r)
    }

    /// Apply an out-of-line helper lane by lane: `x` is the lane-varying f32 argument,
    /// `extra` are scalar arguments passed unchanged to every call.
    pub fn call_helper(&mut self, index: usize, x: Value, extra: &[Value]) -> Value {
        let h = self.helpers;
        let off = (index * h.ptr_ty.bytes() as usize) as i32;
        let fptr = self
            .b
            .ins()
            .load(h.ptr_ty, MemFlagsData::trusted().with_readonly(), h.table, off);
        let sig = if extra.is_empty() { h.sig_unary } else { h.sig_pow };
        let call = |b: &mut FunctionBuilder, lane: Value| {
            let mut args = vec![lane];
            args.extend_from_slice(extra);
            let inst = b.ins().call_indirect(sig, fptr, &args);
            b.inst_results(inst)[0]
        };
        match self.w {
            Width::Scalar => call(self.b, x),
            Width::X4 => {
                let mut out = None;
                for lane in 0..4u8 {
                    let s = self.b.ins().extractlane(x, lane);
                    let r = call(self.b, s);
                    out = Some(match out {
                        None => self.b.ins().scalar_to_vector(types::F32X4, r),
                        Some(v) => self.b.ins().insertlane(v, r, lane),
                    });
                }
                out.expect("four lanes")
            }
        }
    }

    /// Call the program's generated support function `f` on scalar `x`.
    pub fn call_support(&mut self, f: super::abi::MathFn, x: Value) -> Value {
        let h = self.helpers;
        let off = (f.table_index() * h.ptr_ty.bytes() as usize) as i32;
        let fptr = self
            .b
            .ins()
            .load(h.ptr_ty, MemFlagsData::trusted().with_readonly(), h.table, off);
        let inst = self.b.ins().call_indirect(h.sig_math, fptr, &[x, h.table]);
        self.b.inst_results(inst)[0]
    }

    /// Reinterpret a 128-bit vector with a different lane layout (little-endian lanes).
    pub fn reinterpret(&mut self, ty: Type, x: Value) -> Value {
        self.b
            .ins()
            .bitcast(ty, MemFlagsData::new().with_endianness(Endianness::Little), x)
    }
}
