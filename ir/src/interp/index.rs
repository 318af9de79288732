//! Row-major multi-index iteration shared by the interpreter's op modules. Owns only
//! index bookkeeping; it never reads tensor data.

use crate::Shape;

/// Call `f(flat, idx)` for every multi-index of `dims` in row-major order (`flat` is
/// the row-major offset of `idx`). A rank-0 shape visits `[]` once; a shape with a zero
/// dimension visits nothing.
pub(crate) fn for_each_index(dims: &[usize], mut f: impl FnMut(usize, &[usize])) {
    let total: usize = dims.iter().product();
    let mut idx = vec![0usize; dims.len()];
    for flat in 0..total {
        f(flat, &idx);
        for a in (0..dims.len()).rev() {
            idx[a] += 1;
            if idx[a] < dims[a] {
                break;
            }
            idx[a] = 0;
        }
    }
}

/// Row-major offset of `idx` in a tensor of `shape` (`idx` must be in range).
pub(crate) fn offset(shape: &Shape, idx: &[usize]) -> usize {
    shape.ravel(idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visits_in_row_major_order() {
        let mut seen = Vec::new();
        for_each_index(&[2, 3], |flat, idx| seen.push((flat, idx.to_vec())));
        assert_eq!(seen.len(), 6);
        assert_eq!(seen[4], (4, vec![1, 1]));
        let mut n = 0;
        for_each_index(&[], |_, idx| {
            assert!(idx.is_empty());
            n += 1
        });
        assert_eq!(n, 1);
        for_each_index(&[3, 0, 2], |_, _| panic!("no elements"));
    }
}
