//! Movement ops as index maps. Owns two views of the same idea: (1) for a loop kernel,
//! which operand index an output index of `reshape`/`expand`/`permute`/`slice` reads
//! (pad, concat, unfold and gather need guards and live in `emit`); (2) for a matmul
//! operand, the offset and strides of a chain of such views over a buffer, when one
//! exists (NumPy's "reshape without copy" rule). Pure index arithmetic, no graphs.

use kiln_ir::{Op, Shape};

use super::index::{ravel, unravel};
use crate::kernel::IndexExpr;

/// The operand index read by output index `idx` of a pure view op, or `None` for ops
/// that are not pure views.
pub(crate) fn operand_index(op: &Op, out: &Shape, input: &Shape, idx: &[IndexExpr]) -> Option<Vec<IndexExpr>> {
    Some(match op {
        Op::Reshape => unravel(&ravel(idx, out.dims()), input.dims()),
        Op::Expand => {
            let skip = out.rank() - input.rank();
            input
                .dims()
                .iter()
                .enumerate()
                .map(|(j, &d)| {
                    if d == 1 {
                        IndexExpr::Const(0)
                    } else {
                        idx[j + skip].clone()
                    }
                })
                .collect()
        }
        Op::Permute { perm } => {
            let mut src = vec![IndexExpr::Const(0); perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                src[p] = idx[i].clone();
            }
            src
        }
        Op::Slice { starts, steps, .. } => idx
            .iter()
            .zip(starts.iter().zip(steps))
            .map(|(e, (&s, &st))| e.clone().mul(st as i64).add(IndexExpr::Const(s as i64)))
            .collect(),
        _ => return None,
    })
}

/// Whether `op` is a view a strided layout can express (reshape only sometimes).
pub(crate) fn is_strided_view(op: &Op) -> bool {
    matches!(op, Op::Reshape | Op::Expand | Op::Permute { .. } | Op::Slice { .. })
}

/// Element `(i0, i1, ...)` lives at `offset + Σ strides[a] * i_a`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Strided {
    pub offset: i64,
    pub strides: Vec<i64>,
}

impl Strided {
    pub(crate) fn contiguous(shape: &Shape) -> Strided {
        Strided {
            offset: 0,
            strides: shape.strides().into_iter().map(|s| s as i64).collect(),
        }
    }

    /// The layout of `op`'s result (shape `out`) over this layout of its operand
    /// (shape `input`), or `None` when no strides express it.
    pub(crate) fn apply(&self, op: &Op, out: &Shape, input: &Shape) -> Option<Strided> {
        let mut s = self.clone();
        match op {
            Op::Expand => {
                let skip = out.rank() - input.rank();
                s.strides = (0..out.rank())
                    .map(|i| {
                        if i < skip || (input.dims()[i - skip] == 1 && out.dims()[i] != 1) {
                            0
                        } else {
                            self.strides[i - skip]
                        }
                    })
                    .collect();
            }
            Op::Permute { perm } => s.strides = perm.iter().map(|&p| self.strides[p]).collect(),
            Op::Slice { starts, steps, .. } => {
                for a in 0..starts.len() {
                    s.offset += starts[a] as i64 * self.strides[a];
                    s.strides[a] *= steps[a] as i64;
                }
            }
            Op::Reshape => s.strides = reshape_strides(input.dims(), &self.strides, out.dims())?,
            _ => return None,
        }
        Some(s)
    }
}

/// Strides for viewing a tensor of `old` dims with `old_strides` as `new` dims without a
/// copy (PyTorch's `computeStride`), or `None` when the view needs a copy.
fn reshape_strides(old: &[usize], old_strides: &[i64], new: &[usize]) -> Option<Vec<i64>> {
    let numel: usize = old.iter().product();
    if numel == 0 || old.is_empty() {
        return Some(
            Shape::new(new.to_vec())
                .strides()
                .into_iter()
                .map(|s| s as i64)
                .collect(),
        );
    }
    let mut out = vec![0i64; new.len()];
    let mut view_d = new.len() as isize - 1;
    let mut chunk_base = *old_strides.last()?;
    let (mut tensor_numel, mut view_numel) = (1i64, 1i64);
    for td in (0..old.len()).rev() {
        tensor_numel *= old[td] as i64;
        if td == 0 || (old[td - 1] != 1 && old_strides[td - 1] != tensor_numel * chunk_base) {
            while view_d >= 0 && (view_numel < tensor_numel || new[view_d as usize] == 1) {
                out[view_d as usize] = view_numel * chunk_base;
                view_numel *= new[view_d as usize] as i64;
                view_d -= 1;
            }
            if view_numel != tensor_numel {
                return None;
            }
            if td > 0 {
                chunk_base = old_strides[td - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    (view_d == -1).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(d: &[usize]) -> Shape {
        Shape::new(d.to_vec())
    }

    #[test]
    fn strided_views_compose() {
        let base = Strided::contiguous(&s(&[2, 3, 4]));
        let t = base
            .apply(&Op::Permute { perm: vec![0, 2, 1] }, &s(&[2, 4, 3]), &s(&[2, 3, 4]))
            .unwrap();
        assert_eq!(t.strides, vec![12, 1, 4]);
        // merging the transposed trailing axes needs a copy; merging the batch axis does not
        assert_eq!(t.apply(&Op::Reshape, &s(&[2, 12]), &s(&[2, 4, 3])), None);
        let flat = base.apply(&Op::Reshape, &s(&[6, 4]), &s(&[2, 3, 4])).unwrap();
        assert_eq!(flat.strides, vec![4, 1]);
        let e = Strided::contiguous(&s(&[3, 1]))
            .apply(&Op::Expand, &s(&[5, 3, 7]), &s(&[3, 1]))
            .unwrap();
        assert_eq!(e.strides, vec![0, 1, 0]);
        let sl = Op::Slice {
            starts: vec![1, 0],
            ends: vec![6, 4],
            steps: vec![2, 1],
        };
        let v = Strided::contiguous(&s(&[6, 4]))
            .apply(&sl, &s(&[3, 4]), &s(&[6, 4]))
            .unwrap();
        assert_eq!((v.offset, v.strides), (4, vec![8, 1]));
    }
}
