//! The calling convention of generated CPU kernels: what the runtime passes, in which
//! layout, and the out-of-line helpers it must provide. Owns the signature and the
//! entry-block loads; it must not know how loops or instructions are emitted.
//!
//! Every loop kernel (and every matmul epilogue) becomes one function
//!
//! ```text
//! extern "C" fn(bufs: *const *mut u8,      // one base pointer per Program buffer, indexed by BufferId
//!               scalars: *const u32,       // one 4-byte slot per Program scalar (f32 bits, i32, bool 0/1)
//!               helpers: *const *const u8, // TABLE_LEN function pointers (see below)
//!               begin: i64, end: i64)      // the half-open range of flat outer points to run
//! ```
//!
//! - A view buffer's pointer is its base's pointer plus `offset` elements.
//! - Elements are 4 bytes: f32, i32, bool as a u32 0/1.
//! - Every pointer must have at least [`SLACK_ELEMENTS`] readable elements from its
//!   start even when the buffer is shorter (the runtime over-allocates): guarded vector
//!   loads read a safe dummy address when their guard fails.
//! - The helper table holds the runtime's [`Helper`]s at `0..HELPER_COUNT`, then the
//!   program's generated support functions ([`MathFn`], `ClifProgram::support`) at
//!   `HELPER_COUNT + MathFn as usize` (null where the program defines none).
//! - Flat outer point `o` is the row-major index over `LoopKernel::outer` (`outer = []`
//!   has the single point 0). Any split of `[0, outer_total)` into ranges may run
//!   concurrently: the kernel IR guarantees outer points are independent.

use cranelift_codegen::ir::{types, AbiParam, InstBuilder, MemFlagsData, Signature, Type, Value};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::FunctionBuilder;

use crate::kernel::BufferId;

/// Minimum readable elements behind every buffer pointer (see the module doc).
pub const SLACK_ELEMENTS: usize = 4;

/// The Rust type of a generated kernel.
pub type KernelFn = unsafe extern "C" fn(*const *mut u8, *const u32, *const *const u8, i64, i64);

/// Out-of-line helpers generated code may call through the helper table. Each computes
/// in f64 and rounds once to f32 (correctly rounded up to f64's own error), so they are
/// the accurate slow path, not the fast one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum Helper {
    /// `extern "C" fn(f32) -> f32`: `(x as f64).sin() as f32`. Used for lanes with
    /// |x| > `math::TRIG_FAST_LIMIT`, inf and NaN.
    Sin = 0,
    /// `extern "C" fn(f32) -> f32`: `(x as f64).cos() as f32`.
    Cos = 1,
    /// `extern "C" fn(f32, f64) -> f32`: `(x as f64).powf(e) as f32`, for exponents
    /// without an exact inline expansion.
    Pow = 2,
}

/// Number of entries of the helper table.
pub const HELPER_COUNT: usize = 3;

impl Helper {
    pub const ALL: [Helper; HELPER_COUNT] = [Helper::Sin, Helper::Cos, Helper::Pow];
}

/// Generated scalar math functions a program may define once and call from the cold
/// scalar tails of its vector kernels (keeping inline expansions out of the tails
/// halves the Cranelift time of transcendental-heavy kernels). Signature:
/// `extern "C" fn(x: f32, helpers: *const *const u8) -> f32`; the result is
/// bit-identical to the inline expansion, so a point's value never depends on whether
/// it landed in a vector or a tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(usize)]
pub enum MathFn {
    Exp = 0,
    Log = 1,
    Tanh = 2,
    Sigmoid = 3,
    Sin = 4,
    Cos = 5,
}

impl MathFn {
    pub const ALL: [MathFn; 6] = [
        MathFn::Exp,
        MathFn::Log,
        MathFn::Tanh,
        MathFn::Sigmoid,
        MathFn::Sin,
        MathFn::Cos,
    ];

    /// Position in the helper table.
    pub fn table_index(self) -> usize {
        HELPER_COUNT + self as usize
    }
}

/// Entries of the helper table passed to every kernel.
pub const TABLE_LEN: usize = HELPER_COUNT + 6;

/// What the runtime needs to know to call one generated kernel.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelAbi {
    /// Number of flat outer points (`[0, outer_total)` is the full range).
    pub outer_total: usize,
    /// 4 when the main loop runs f32x4 over the innermost outer dimension, else 1.
    pub lanes: usize,
    /// Stages whose inner loop runs f32x4 instead (row reductions), when `lanes == 1`.
    pub vector_stages: usize,
    /// Extent of the innermost outer dimension: ranges that start at multiples of it
    /// (or of `lanes`) keep the vector loop aligned with rows.
    pub row: usize,
    /// Rough cost of one outer point in emitted operations (inner loops included), for
    /// the runtime's decision whether splitting across threads pays.
    pub work_per_point: usize,
    /// Why the vector main loop was not used, when it was not.
    pub scalar_reason: Option<String>,
    /// Buffers the kernel reads and writes.
    pub reads: Vec<BufferId>,
    pub writes: Vec<BufferId>,
    /// Whether the kernel may call through the helper table.
    pub uses_helpers: bool,
}

/// The kernel signature for `call_conv`.
pub fn kernel_signature(call_conv: CallConv, ptr: Type) -> Signature {
    let mut sig = Signature::new(call_conv);
    for _ in 0..3 {
        sig.params.push(AbiParam::new(ptr));
    }
    sig.params.push(AbiParam::new(types::I64));
    sig.params.push(AbiParam::new(types::I64));
    sig
}

/// Signature of a helper: `fn(f32) -> f32` (`pow = false`) or `fn(f32, f64) -> f32`.
pub fn helper_signature(call_conv: CallConv, pow: bool) -> Signature {
    let mut sig = Signature::new(call_conv);
    sig.params.push(AbiParam::new(types::F32));
    if pow {
        sig.params.push(AbiParam::new(types::F64));
    }
    sig.returns.push(AbiParam::new(types::F32));
    sig
}

/// Signature of a [`MathFn`] support function.
pub fn math_signature(call_conv: CallConv, ptr: Type) -> Signature {
    let mut sig = Signature::new(call_conv);
    sig.params.push(AbiParam::new(types::F32));
    sig.params.push(AbiParam::new(ptr));
    sig.returns.push(AbiParam::new(types::F32));
    sig
}

/// The kernel's parameters as SSA values of the entry block.
#[derive(Clone, Copy, Debug)]
pub struct EntryParams {
    pub bufs: Value,
    pub scalars: Value,
    pub helpers: Value,
    pub begin: Value,
    pub end: Value,
}

/// Base pointer of buffer `id` (loaded once, in the entry block).
pub fn load_buffer_ptr(b: &mut FunctionBuilder, ptr: Type, params: &EntryParams, id: BufferId) -> Value {
    let off = (id.0 as usize * ptr.bytes() as usize) as i32;
    b.ins()
        .load(ptr, MemFlagsData::trusted().with_readonly(), params.bufs, off)
}

/// Raw 4-byte scalar slot `slot` as `ty` (I32 or F32).
pub fn load_scalar(b: &mut FunctionBuilder, params: &EntryParams, slot: usize, ty: Type) -> Value {
    b.ins().load(
        ty,
        MemFlagsData::trusted().with_readonly(),
        params.scalars,
        (slot * 4) as i32,
    )
}
