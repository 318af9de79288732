//! Static tensor shapes: dimensions, element counts, row-major strides and NumPy
//! broadcasting. Pure data; validation errors are built by the callers in `infer`.

use std::fmt;

/// A static shape. Rank 0 is a scalar.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Shape(pub Vec<usize>);

impl Shape {
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape(dims.into())
    }

    pub fn scalar() -> Self {
        Shape(Vec::new())
    }

    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Number of elements (1 for a scalar, 0 if any dimension is 0).
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }

    /// Row-major (C order) strides in elements.
    pub fn strides(&self) -> Vec<usize> {
        let mut s = vec![0; self.0.len()];
        let mut acc = 1;
        for i in (0..self.0.len()).rev() {
            s[i] = acc;
            acc *= self.0[i];
        }
        s
    }

    /// Multi-index of the flat row-major offset `flat`.
    pub fn unravel(&self, mut flat: usize) -> Vec<usize> {
        let mut idx = vec![0; self.0.len()];
        for i in (0..self.0.len()).rev() {
            let d = self.0[i].max(1);
            idx[i] = flat % d;
            flat /= d;
        }
        idx
    }

    /// Flat row-major offset of a multi-index.
    pub fn ravel(&self, idx: &[usize]) -> usize {
        let mut flat = 0;
        for (i, &d) in self.0.iter().enumerate() {
            flat = flat * d + idx[i];
        }
        flat
    }

    /// NumPy broadcast of two shapes, or the first (right-aligned) axis where they
    /// disagree: `Err((axis_in_result, a_dim, b_dim))`.
    pub fn broadcast(a: &Shape, b: &Shape) -> Result<Shape, (usize, usize, usize)> {
        let r = a.rank().max(b.rank());
        let mut out = vec![0; r];
        for i in 0..r {
            let da = if i + a.rank() >= r { a.0[i + a.rank() - r] } else { 1 };
            let db = if i + b.rank() >= r { b.0[i + b.rank() - r] } else { 1 };
            out[i] = if da == db || db == 1 {
                da
            } else if da == 1 {
                db
            } else {
                return Err((i, da, db));
            };
        }
        Ok(Shape(out))
    }

    /// Whether `self` broadcasts to `target` under NumPy rules (right-aligned,
    /// each dimension equal or 1).
    pub fn broadcasts_to(&self, target: &Shape) -> bool {
        if self.rank() > target.rank() {
            return false;
        }
        let off = target.rank() - self.rank();
        self.0
            .iter()
            .enumerate()
            .all(|(i, &d)| d == 1 || d == target.0[i + off])
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

impl From<Vec<usize>> for Shape {
    fn from(v: Vec<usize>) -> Self {
        Shape(v)
    }
}

impl From<&[usize]> for Shape {
    fn from(v: &[usize]) -> Self {
        Shape(v.to_vec())
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(v: [usize; N]) -> Self {
        Shape(v.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_follows_numpy() {
        let s = |v: &[usize]| Shape::from(v);
        assert_eq!(Shape::broadcast(&s(&[3, 1]), &s(&[4])), Ok(s(&[3, 4])));
        assert_eq!(Shape::broadcast(&s(&[]), &s(&[2, 5])), Ok(s(&[2, 5])));
        assert_eq!(
            Shape::broadcast(&s(&[1, 7, 1]), &s(&[3, 1, 1, 9])),
            Ok(s(&[3, 1, 7, 9]))
        );
        assert_eq!(Shape::broadcast(&s(&[0]), &s(&[1])), Ok(s(&[0])));
        assert_eq!(Shape::broadcast(&s(&[3]), &s(&[4])), Err((0, 3, 4)));
        assert_eq!(Shape::broadcast(&s(&[2, 3]), &s(&[3, 3])), Err((0, 2, 3)));
    }

    #[test]
    fn strides_and_ravel_roundtrip() {
        let s = Shape::from([2, 3, 5]);
        assert_eq!(s.strides(), vec![15, 5, 1]);
        for f in 0..s.numel() {
            assert_eq!(s.ravel(&s.unravel(f)), f);
        }
        assert_eq!(Shape::scalar().numel(), 1);
    }
}
