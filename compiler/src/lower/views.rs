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
        Op::Reshape => reshape_index(out.dims(), input.dims(), idx),
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

/// The operand index of a reshape, dimension group by group: the output and input
/// dims are cut into the smallest groups with equal products (`[n, c, 14, 14]` vs
/// `[n, c, 196]` gives `[n]|[c]|[14, 14]` and `[n]|[c]|[196]`), and only within a group
/// is the index raveled and unraveled. For in-range indices this equals raveling the
/// whole index, but a component that a guard may push out of range (unfold's padding
/// reads row -1) stays inside its own group, so the simplifier still sees an affine
/// index instead of a chain of floor divisions across unrelated dims.
fn reshape_index(out: &[usize], input: &[usize], idx: &[IndexExpr]) -> Vec<IndexExpr> {
    let whole = || unravel(&ravel(idx, out), input);
    if out.contains(&0) || input.contains(&0) || idx.len() != out.len() {
        return whole();
    }
    let mut src = Vec::with_capacity(input.len());
    let (mut i, mut j) = (0, 0);
    while i < out.len() && j < input.len() {
        let (i0, j0) = (i, j);
        let (mut po, mut pi) = (out[i], input[j]);
        (i, j) = (i + 1, j + 1);
        while po != pi {
            if po < pi && i < out.len() {
                po *= out[i];
                i += 1;
            } else if pi < po && j < input.len() {
                pi *= input[j];
                j += 1;
            } else {
                return whole();
            }
        }
        src.extend(unravel(&ravel(&idx[i0..i], &out[i0..i]), &input[j0..j]));
    }
    // What is left on either side are dims of size 1 (equal total sizes).
    if out[i..].iter().chain(&input[j..]).any(|&d| d != 1) {
        return whole();
    }
    src.extend(input[j..].iter().map(|_| IndexExpr::Const(0)));
    src
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

    #[test]
    fn grouped_reshape_index_equals_the_whole_ravel_in_range() {
        let pairs: &[(&[usize], &[usize])] = &[
            (&[2, 3, 4, 5], &[2, 3, 20]),
            (&[2, 3, 20], &[2, 3, 4, 5]),
            (&[6, 4], &[2, 3, 4]),
            (&[2, 1, 6], &[4, 3]),
            (&[1, 12, 1], &[3, 4]),
            (&[3, 4], &[1, 12, 1, 1]),
            (&[4, 6], &[6, 4]),
            (&[7], &[7, 1]),
            (&[], &[1, 1]),
        ];
        for &(out, input) in pairs {
            let idx: Vec<IndexExpr> = (0..out.len()).map(IndexExpr::Var).collect();
            let grouped = reshape_index(out, input, &idx);
            let whole = unravel(&ravel(&idx, out), input);
            assert_eq!(grouped.len(), input.len(), "{out:?} -> {input:?}");
            let total: usize = out.iter().product();
            for flat in 0..total {
                let mut rest = flat;
                let mut vars = vec![0i64; out.len()];
                for a in (0..out.len()).rev() {
                    vars[a] = (rest % out[a]) as i64;
                    rest /= out[a];
                }
                let ev = |e: &IndexExpr| e.eval(&vars, &|_| 0);
                let g: Vec<i64> = grouped.iter().map(ev).collect();
                let w: Vec<i64> = whole.iter().map(ev).collect();
                assert_eq!(g, w, "{out:?} -> {input:?} at {vars:?}");
            }
        }
        // A padded read (row -1 under a guard) stays affine: no floor division appears.
        let idx = vec![
            IndexExpr::Var(0),
            IndexExpr::Var(1).add(IndexExpr::Const(-1)),
            IndexExpr::Var(2),
        ];
        let src = reshape_index(&[2, 14, 14], &[2, 196], &idx);
        let flat = super::super::index::simplify(&ravel(&src, &[2, 196]), &[2, 15, 14]);
        assert!(!format!("{flat}").contains('/'), "{flat}");
    }
}
