//! Element types of kiln tensors. Owns the `DType` enum and its properties; it does
//! not know about shapes or ops.

use std::fmt;

/// Element type of a tensor.
///
/// `F32` is the compute type. `I32` holds labels and indices, `Bool` holds masks.
/// `F16` and `BF16` are reserved as *storage* types (converted to f32 for compute);
/// the IR accepts them only in casts until the mixed-precision work lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    F32,
    I32,
    Bool,
    F16,
    BF16,
}

impl DType {
    /// Bytes one element occupies in device memory.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::Bool => 1,
        }
    }

    /// Floating-point types (arithmetic with transcendentals allowed on `F32`).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16)
    }

    /// Types the elementwise arithmetic ops accept.
    pub fn is_numeric(self) -> bool {
        matches!(self, DType::F32 | DType::I32)
    }

    /// Stable small code used by the structural hash.
    pub(crate) fn code(self) -> u8 {
        match self {
            DType::F32 => 0,
            DType::I32 => 1,
            DType::Bool => 2,
            DType::F16 => 3,
            DType::BF16 => 4,
        }
    }

    /// Round an f64 to what this dtype can hold (the interpreter's storage rule).
    pub fn quantize(self, v: f64) -> f64 {
        match self {
            DType::F32 | DType::F16 | DType::BF16 => v,
            DType::I32 => {
                if v.is_nan() {
                    0.0
                } else {
                    v.trunc().clamp(i32::MIN as f64, i32::MAX as f64)
                }
            }
            DType::Bool => {
                if v != 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::I32 => "i32",
            DType::Bool => "bool",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
        })
    }
}
