//! Index arithmetic for lowering: row-major `ravel`/`unravel` as [`IndexExpr`]s and a
//! range-aware simplifier that brings every index into a normal form (a sorted sum of
//! atoms), so that reshape round trips collapse back to plain affine indices
//! (`((i0*N + i1) / N, (i0*N + i1) % N)` becomes `(i0, i1)` when `0 <= i1 < N`) and two
//! indices can be compared structurally. It knows loop extents, nothing of graphs.

use std::collections::BTreeMap;

use crate::kernel::{IndexExpr, ValueId};

/// Row-major offset of the multi-index `idx` in a tensor of `dims` (simplified later).
pub(crate) fn ravel(idx: &[IndexExpr], dims: &[usize]) -> IndexExpr {
    let mut flat = IndexExpr::Const(0);
    let mut stride = 1i64;
    for (e, &d) in idx.iter().zip(dims).rev() {
        flat = e.clone().mul(stride).add(flat);
        stride *= d as i64;
    }
    flat
}

/// The multi-index in a tensor of `dims` of the row-major offset `flat`.
pub(crate) fn unravel(flat: &IndexExpr, dims: &[usize]) -> Vec<IndexExpr> {
    let mut stride = 1i64;
    let mut out = vec![IndexExpr::Const(0); dims.len()];
    for a in (0..dims.len()).rev() {
        let q = flat.clone().div(stride.max(1));
        out[a] = if a == 0 { q } else { q.rem(dims[a].max(1) as i64) };
        stride *= dims[a] as i64;
    }
    out
}

/// An indivisible part of a normalised index.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Atom {
    Var(usize),
    Value(u32),
    Div(Box<Lin>, i64),
    Mod(Box<Lin>, i64),
}

/// `Σ coef * atom + c`, atoms sorted: the normal form.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Lin {
    terms: BTreeMap<Atom, i64>,
    c: i64,
}

impl Lin {
    fn constant(c: i64) -> Lin {
        Lin {
            terms: BTreeMap::new(),
            c,
        }
    }
    fn atom(a: Atom) -> Lin {
        Lin {
            terms: BTreeMap::from([(a, 1)]),
            c: 0,
        }
    }
    fn add(mut self, o: Lin) -> Lin {
        for (a, k) in o.terms {
            *self.terms.entry(a).or_insert(0) += k;
        }
        self.terms.retain(|_, k| *k != 0);
        self.c += o.c;
        self
    }
    fn scale(mut self, s: i64) -> Lin {
        if s == 0 {
            return Lin::constant(0);
        }
        for k in self.terms.values_mut() {
            *k *= s;
        }
        self.c *= s;
        self
    }
    /// `self = d*q + r` with every coefficient of `r` not a multiple of `d` and
    /// `0 <= r.c < d`.
    fn split(&self, d: i64) -> (Lin, Lin) {
        let mut q = Lin::constant(self.c.div_euclid(d));
        let mut r = Lin::constant(self.c.rem_euclid(d));
        for (a, &k) in &self.terms {
            if k % d == 0 {
                q.terms.insert(a.clone(), k / d);
            } else {
                r.terms.insert(a.clone(), k);
            }
        }
        (q, r)
    }
    fn single_atom(&self) -> Option<&Atom> {
        match (self.terms.len(), self.terms.iter().next()) {
            (1, Some((a, 1))) if self.c == 0 => Some(a),
            _ => None,
        }
    }
}

/// Inclusive value range of loop variables and normalised expressions; `None` when
/// unbounded (data-dependent).
struct Ranges<'a> {
    extents: &'a [usize],
}

impl Ranges<'_> {
    fn atom(&self, a: &Atom) -> Option<(i64, i64)> {
        match a {
            Atom::Var(k) => Some((0, self.extents.get(*k).map_or(0, |&e| e.max(1) as i64 - 1))),
            Atom::Value(_) => None,
            Atom::Div(l, d) => {
                let (lo, hi) = self.lin(l)?;
                Some((lo.div_euclid(*d), hi.div_euclid(*d)))
            }
            Atom::Mod(_, d) => Some((0, d - 1)),
        }
    }

    fn lin(&self, l: &Lin) -> Option<(i64, i64)> {
        let (mut lo, mut hi) = (l.c, l.c);
        for (a, &k) in &l.terms {
            let (alo, ahi) = self.atom(a)?;
            let (x, y) = (alo.checked_mul(k)?, ahi.checked_mul(k)?);
            lo = lo.checked_add(x.min(y))?;
            hi = hi.checked_add(x.max(y))?;
        }
        Some((lo, hi))
    }

    fn div(&self, l: Lin, d: i64) -> Lin {
        if d == 1 {
            return l;
        }
        let (q, r) = l.split(d);
        if let Some((lo, hi)) = self.lin(&r) {
            if lo.div_euclid(d) == hi.div_euclid(d) {
                return q.add(Lin::constant(lo.div_euclid(d)));
            }
        }
        // floor(floor(x / a) / d) = floor(x / (a*d))
        if let Some(Atom::Div(inner, a)) = r.single_atom() {
            return q.add(self.div((**inner).clone(), a * d));
        }
        q.add(Lin::atom(Atom::Div(Box::new(r), d)))
    }

    fn rem(&self, l: Lin, d: i64) -> Lin {
        if d == 1 {
            return Lin::constant(0);
        }
        let (_, r) = l.split(d);
        if let Some((lo, hi)) = self.lin(&r) {
            let k = lo.div_euclid(d);
            if k == hi.div_euclid(d) {
                return r.add(Lin::constant(-k * d));
            }
        }
        // (x mod a) mod d = x mod d when d divides a
        if let Some(Atom::Mod(inner, a)) = r.single_atom() {
            if a % d == 0 {
                return self.rem((**inner).clone(), d);
            }
        }
        Lin::atom(Atom::Mod(Box::new(r), d))
    }

    fn norm(&self, e: &IndexExpr) -> Lin {
        match e {
            // A loop of one iteration is the constant 0.
            IndexExpr::Var(k) if self.extents.get(*k).is_some_and(|&e| e <= 1) => Lin::constant(0),
            IndexExpr::Var(k) => Lin::atom(Atom::Var(*k)),
            IndexExpr::Const(c) => Lin::constant(*c),
            IndexExpr::Add(a, b) => recombine(self.norm(a).add(self.norm(b))),
            IndexExpr::Mul(a, c) => self.norm(a).scale(*c),
            IndexExpr::Div(a, c) => self.div(self.norm(a), *c),
            IndexExpr::Mod(a, c) => self.rem(self.norm(a), *c),
            IndexExpr::Value(v) => Lin::atom(Atom::Value(v.0)),
        }
    }
}

/// Merge every `k*d*(l / d) + k*(l % d)` back into `k*l` (floor division and
/// modulo, `d > 0`, so the identity holds for every integer `l`). Reshape round trips
/// whose range analysis could not prove a split exact leave such pairs behind, e.g.
/// `(i / 14)*14 + i % 14` in a padded unfold; merging them keeps the index affine, so
/// the backends can vectorise along `i`.
fn recombine(mut lin: Lin) -> Lin {
    loop {
        let pair = lin.terms.iter().find_map(|(a, &k)| match a {
            Atom::Mod(l, d) => {
                let div = Atom::Div(l.clone(), *d);
                let kd = *lin.terms.get(&div)?;
                (kd == k * d).then(|| (a.clone(), div, (**l).clone(), k))
            }
            _ => None,
        });
        let Some((m, div, l, k)) = pair else {
            return lin;
        };
        lin.terms.remove(&m);
        lin.terms.remove(&div);
        lin = lin.add(l.scale(k));
    }
}

fn from_atom(a: &Atom) -> IndexExpr {
    match a {
        Atom::Var(k) => IndexExpr::Var(*k),
        Atom::Value(v) => IndexExpr::Value(ValueId(*v)),
        Atom::Div(l, d) => IndexExpr::Div(Box::new(from_lin(l)), *d),
        Atom::Mod(l, d) => IndexExpr::Mod(Box::new(from_lin(l)), *d),
    }
}

fn from_lin(l: &Lin) -> IndexExpr {
    let mut e = IndexExpr::Const(0);
    // Highest-numbered (innermost) variables last, so `affine_in` reads naturally.
    for (a, &k) in &l.terms {
        e = e.add(from_atom(a).mul(k));
    }
    e.add(IndexExpr::Const(l.c))
}

/// The normal form of `e` given the extents of the loop variables in scope.
pub(crate) fn simplify(e: &IndexExpr, extents: &[usize]) -> IndexExpr {
    from_lin(&Ranges { extents }.norm(e))
}

/// Inclusive bounds of `e` over the loop extents, `None` when data-dependent.
pub(crate) fn bounds(e: &IndexExpr, extents: &[usize]) -> Option<(i64, i64)> {
    let r = Ranges { extents };
    r.lin(&r.norm(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(k: usize) -> IndexExpr {
        IndexExpr::Var(k)
    }

    #[test]
    fn reshape_round_trips_collapse() {
        let ext = [5, 7];
        let flat = ravel(&[v(0), v(1)], &[5, 7]);
        let back: Vec<IndexExpr> = unravel(&flat, &[5, 7]).iter().map(|e| simplify(e, &ext)).collect();
        assert_eq!(back, vec![v(0), v(1)]);
        // [5, 7] -> [35] -> [5, 1, 7]: the middle axis is 0
        let three: Vec<IndexExpr> = unravel(&flat, &[5, 1, 7]).iter().map(|e| simplify(e, &ext)).collect();
        assert_eq!(three, vec![v(0), IndexExpr::Const(0), v(1)]);
        // [35] split as [7, 5] stays div/mod, and evaluates correctly
        let odd = unravel(&flat, &[7, 5]);
        for i in 0..5 {
            for j in 0..7 {
                let f = i * 7 + j;
                let got: Vec<i64> = odd.iter().map(|e| simplify(e, &ext).eval(&[i, j], &|_| 0)).collect();
                assert_eq!(got, vec![f / 5, f % 5]);
            }
        }
    }

    #[test]
    fn normal_form_is_canonical_and_exact() {
        let ext = [4, 6];
        let a = IndexExpr::var(1).add(IndexExpr::var(0).mul(6));
        let b = IndexExpr::var(0)
            .mul(3)
            .add(IndexExpr::var(1))
            .add(IndexExpr::var(0).mul(3));
        assert_eq!(simplify(&a, &ext), simplify(&b, &ext));
        let nested = a.clone().div(2).div(3);
        assert_eq!(simplify(&nested, &ext), simplify(&a.clone().div(6), &ext));
        assert_eq!(simplify(&a.clone().div(6), &ext), v(0));
        assert_eq!(bounds(&a, &ext), Some((0, 23)));
        let m = a.clone().rem(12).rem(4);
        for i in 0..4 {
            for j in 0..6 {
                let want = (i * 6 + j) % 4;
                assert_eq!(simplify(&m, &ext).eval(&[i, j], &|_| 0), want);
            }
        }
    }

    #[test]
    fn floor_division_pairs_merge_back() {
        let ext = [3, 196];
        // (i1 / 14)*14 + i1 % 14 - 15 + 3*i0  ->  i1 + 3*i0 - 15
        let e = v(1)
            .div(14)
            .mul(14)
            .add(v(1).rem(14))
            .add(IndexExpr::Const(-15))
            .add(v(0).mul(3));
        let s = simplify(&e, &ext);
        assert_eq!(s, simplify(&v(0).mul(3).add(v(1)).add(IndexExpr::Const(-15)), &ext));
        // scaled pairs merge too; unmatched ones stay and still evaluate exactly
        let scaled = v(1).div(7).mul(14).add(v(1).rem(7).mul(2));
        assert_eq!(simplify(&scaled, &ext), simplify(&v(1).mul(2), &ext));
        let unmatched = v(1).div(7).mul(3).add(v(1).rem(7));
        for i in 0..196 {
            assert_eq!(simplify(&unmatched, &ext).eval(&[0, i], &|_| 0), (i / 7) * 3 + i % 7);
        }
    }
}
