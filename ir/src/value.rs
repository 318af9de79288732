//! `Value`: a dense tensor as the reference interpreter holds it — a shape, a dtype and
//! row-major `f64` data for every dtype (i32 stored exactly, bool as 0/1). Owns
//! construction (which quantizes to the dtype), element access, conversions and
//! printing; it must not know about ops or graphs.

use std::fmt;

use crate::error::{IrError, Result};
use crate::graph::TensorType;
use crate::{DType, Shape};

/// A dense tensor of f64 storage. Invariant (kept by the constructors; the fields are
/// public for convenience, the interpreter re-checks bindings): `data.len() ==
/// shape.numel()` and every element is representable in `dtype` (see `DType::quantize`).
#[derive(Clone, PartialEq)]
pub struct Value {
    pub shape: Shape,
    pub dtype: DType,
    pub data: Vec<f64>,
}

fn len_error(shape: &Shape, got: usize) -> IrError {
    IrError::Shape {
        op: "value",
        detail: format!(
            "{got} data elements given for shape {shape}, which holds {}; pass exactly shape.numel() elements in row-major order",
            shape.numel()
        ),
    }
}

impl Value {
    /// A value of `shape` and `dtype` from row-major `data` (quantized to `dtype`);
    /// fails if `data.len() != shape.numel()`.
    pub fn new(shape: impl Into<Shape>, dtype: DType, mut data: Vec<f64>) -> Result<Value> {
        let shape = shape.into();
        if data.len() != shape.numel() {
            return Err(len_error(&shape, data.len()));
        }
        for v in &mut data {
            *v = dtype.quantize(*v);
        }
        Ok(Value { shape, dtype, data })
    }

    /// A rank-0 value.
    pub fn scalar(v: f64, dtype: DType) -> Value {
        Value {
            shape: Shape::scalar(),
            dtype,
            data: vec![dtype.quantize(v)],
        }
    }

    /// A value of `shape` with every element `v`.
    pub fn full(v: f64, shape: impl Into<Shape>, dtype: DType) -> Value {
        let shape = shape.into();
        let data = vec![dtype.quantize(v); shape.numel()];
        Value { shape, dtype, data }
    }

    /// All zeros.
    pub fn zeros(shape: impl Into<Shape>, dtype: DType) -> Value {
        Value::full(0.0, shape, dtype)
    }

    /// An f32 value from f32 data.
    pub fn from_f32(shape: impl Into<Shape>, data: &[f32]) -> Result<Value> {
        Value::new(shape, DType::F32, data.iter().map(|&x| x as f64).collect())
    }

    /// An i32 value from i32 data.
    pub fn from_i32(shape: impl Into<Shape>, data: &[i32]) -> Result<Value> {
        Value::new(shape, DType::I32, data.iter().map(|&x| x as f64).collect())
    }

    /// A bool value from bool data.
    pub fn from_bool(shape: impl Into<Shape>, data: &[bool]) -> Result<Value> {
        Value::new(shape, DType::Bool, data.iter().map(|&x| x as u8 as f64).collect())
    }

    /// The data rounded to f32.
    pub fn to_f32(&self) -> Vec<f32> {
        self.data.iter().map(|&x| x as f32).collect()
    }

    /// The data as i32 (truncating toward zero, saturating, NaN -> 0).
    pub fn to_i32(&self) -> Vec<i32> {
        self.data.iter().map(|&x| DType::I32.quantize(x) as i32).collect()
    }

    /// Shape and dtype.
    pub fn ty(&self) -> TensorType {
        TensorType::new(self.shape.clone(), self.dtype)
    }

    pub fn numel(&self) -> usize {
        self.shape.numel()
    }

    /// The element at multi-index `idx`, or None when `idx` has the wrong rank or is
    /// out of range.
    pub fn get(&self, idx: &[usize]) -> Option<f64> {
        let dims = self.shape.dims();
        if idx.len() != dims.len() || idx.iter().zip(dims).any(|(&i, &d)| i >= d) {
            return None;
        }
        self.data.get(self.shape.ravel(idx)).copied()
    }

    /// The only element of a one-element value (e.g. a loss), else None.
    pub fn item(&self) -> Option<f64> {
        match self.data.as_slice() {
            [x] => Some(*x),
            _ => None,
        }
    }

    /// Largest absolute elementwise difference to `other`, or None when the shapes
    /// differ. NaN in both at the same place counts as equal; NaN in one gives +inf.
    pub fn max_abs_diff(&self, other: &Value) -> Option<f64> {
        if self.shape != other.shape || self.data.len() != other.data.len() {
            return None;
        }
        let mut worst: f64 = 0.0;
        for (&a, &b) in self.data.iter().zip(&other.data) {
            let d = match (a.is_nan(), b.is_nan()) {
                (true, true) => 0.0,
                (true, false) | (false, true) => f64::INFINITY,
                _ if a == b => 0.0, // equal infinities
                _ => (a - b).abs(),
            };
            worst = worst.max(d);
        }
        Some(worst)
    }

    fn fmt_elem(&self, f: &mut fmt::Formatter<'_>, v: f64) -> fmt::Result {
        match (self.dtype, f.precision()) {
            (DType::I32 | DType::Bool, _) => write!(f, "{}", v as i64),
            (_, Some(p)) => write!(f, "{v:.p$}"),
            _ => write!(f, "{v}"),
        }
    }

    fn fmt_nested(&self, f: &mut fmt::Formatter<'_>, axis: usize, offset: usize) -> fmt::Result {
        let dims = self.shape.dims();
        if axis == dims.len() {
            return self.fmt_elem(f, self.data[offset]);
        }
        let stride: usize = dims[axis + 1..].iter().product();
        write!(f, "[")?;
        for i in 0..dims[axis] {
            if i > 0 {
                write!(f, ", ")?;
            }
            self.fmt_nested(f, axis + 1, offset + i * stride)?;
        }
        write!(f, "]")
    }
}

/// Values with at most this many elements print every element, nested by axis.
const FULL_PRINT_LIMIT: usize = 64;

impl fmt::Display for Value {
    /// `f32[2, 2] [[1, 2], [3, 4]]`; larger values print their first and last elements
    /// in flat order. A precision (`{:.3}`) applies to float elements.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{} ", self.dtype, self.shape)?;
        if self.data.len() != self.shape.numel() {
            return write!(f, "<{} elements: inconsistent with the shape>", self.data.len());
        }
        if self.data.len() <= FULL_PRINT_LIMIT {
            return self.fmt_nested(f, 0, 0);
        }
        write!(f, "flat [")?;
        for (i, &v) in self.data[..6].iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            self.fmt_elem(f, v)?;
        }
        write!(f, ", ...")?;
        for &v in &self.data[self.data.len() - 2..] {
            write!(f, ", ")?;
            self.fmt_elem(f, v)?;
        }
        write!(f, "]")
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value(")?;
        fmt::Display::fmt(self, f)?;
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construction_checks_length_and_quantizes() {
        assert!(Value::new([2, 3], DType::F32, vec![0.0; 5]).is_err());
        let v = Value::new([3], DType::I32, vec![1.7, -2.9, f64::NAN]).unwrap();
        assert_eq!(v.data, vec![1.0, -2.0, 0.0]);
        let b = Value::new([2], DType::Bool, vec![0.5, 0.0]).unwrap();
        assert_eq!(b.data, vec![1.0, 0.0]);
        assert_eq!(Value::full(2.5, [2, 2], DType::I32).data, vec![2.0; 4]);
        assert_eq!(Value::scalar(3.0, DType::F32).numel(), 1);
        assert_eq!(Value::zeros([0, 4], DType::F32).data.len(), 0);
    }

    #[test]
    fn get_and_printing() {
        let v = Value::from_f32([2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.5]).unwrap();
        assert_eq!(v.get(&[1, 2]), Some(6.5));
        assert_eq!(v.get(&[2, 0]), None);
        assert_eq!(v.get(&[0]), None);
        assert_eq!(v.to_string(), "f32[2, 3] [[1, 2, 3], [4, 5, 6.5]]");
        assert_eq!(format!("{v:?}"), "Value(f32[2, 3] [[1, 2, 3], [4, 5, 6.5]])");
        assert_eq!(Value::scalar(-3.0, DType::I32).to_string(), "i32[] -3");
        let big = Value::full(1.0, [100], DType::F32);
        assert!(big.to_string().contains("..."), "{big}");
        assert_eq!(format!("{:.2}", Value::scalar(0.5, DType::F32)), "f32[] 0.50");
    }

    #[test]
    fn max_abs_diff_handles_nan_and_shapes() {
        let a = Value::from_f32([3], &[1.0, f32::NAN, f32::INFINITY]).unwrap();
        let b = Value::from_f32([3], &[1.5, f32::NAN, f32::INFINITY]).unwrap();
        assert_eq!(a.max_abs_diff(&b), Some(0.5));
        let c = Value::from_f32([3], &[1.0, 0.0, f32::INFINITY]).unwrap();
        assert_eq!(a.max_abs_diff(&c), Some(f64::INFINITY));
        assert_eq!(a.max_abs_diff(&Value::zeros([1, 3], DType::F32)), None);
    }
}
