//! Index expressions ([`IndexExpr`]) as C integer expressions, with an interval analysis
//! that decides 32- vs 64-bit index arithmetic and whether a floor division needs the
//! negative-operand helper. Owns index rendering only; it knows nothing of loads.
//!
//! Kernel-IR division and modulo are floor division by a positive constant. C `/` and
//! `%` truncate towards zero, which agrees whenever the dividend is non-negative; the
//! analysis proves that from loop-variable extents and otherwise calls
//! `kiln_floordiv` / `kiln_floormod` from the prelude.

use crate::kernel::{IndexExpr, ValueId};

/// A closed interval of integers (i128 so that products of i64 bounds cannot overflow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    pub lo: i128,
    pub hi: i128,
}

const I32_RANGE: Range = Range {
    lo: i32::MIN as i128,
    hi: i32::MAX as i128,
};

impl Range {
    fn point(c: i128) -> Self {
        Range { lo: c, hi: c }
    }

    pub(crate) fn fits_i32(&self) -> bool {
        self.lo >= i32::MIN as i128 && self.hi <= i32::MAX as i128
    }
}

/// The interval of every value `e` can take when loop variable `k` ranges over
/// `0..extents[k]` (a missing or zero extent counts as the single value 0), and a
/// data-dependent value over all of i32. `widest` collects the widest interval of any
/// sub-expression (for choosing the index type).
pub(crate) fn range(e: &IndexExpr, extents: &[usize], widest: &mut Range) -> Range {
    let r = match e {
        IndexExpr::Var(k) => Range {
            lo: 0,
            hi: extents.get(*k).copied().unwrap_or(1).max(1) as i128 - 1,
        },
        IndexExpr::Const(c) => Range::point(*c as i128),
        IndexExpr::Value(_) => I32_RANGE,
        IndexExpr::Add(a, b) => {
            let (a, b) = (range(a, extents, widest), range(b, extents, widest));
            Range {
                lo: a.lo + b.lo,
                hi: a.hi + b.hi,
            }
        }
        IndexExpr::Mul(a, c) => {
            let a = range(a, extents, widest);
            let c = *c as i128;
            let (x, y) = (a.lo * c, a.hi * c);
            Range {
                lo: x.min(y),
                hi: x.max(y),
            }
        }
        IndexExpr::Div(a, c) => {
            let a = range(a, extents, widest);
            let c = (*c).max(1) as i128;
            Range {
                lo: a.lo.div_euclid(c),
                hi: a.hi.div_euclid(c),
            }
        }
        IndexExpr::Mod(a, c) => {
            let a = range(a, extents, widest);
            let c = (*c).max(1) as i128;
            if a.lo >= 0 && a.hi < c {
                a
            } else {
                Range { lo: 0, hi: c - 1 }
            }
        }
    };
    widest.lo = widest.lo.min(r.lo);
    widest.hi = widest.hi.max(r.hi);
    r
}

/// How loop variables and data-dependent values are spelled in C.
pub(crate) struct IndexNames<'a> {
    pub var: &'a dyn Fn(usize) -> String,
    pub value: &'a dyn Fn(ValueId) -> String,
    /// The C index type (`int` or `long long`), used to widen data-dependent values.
    pub idx: &'a str,
    pub extents: &'a [usize],
}

/// `e` as a C expression of the index type.
pub(crate) fn render(e: &IndexExpr, n: &IndexNames) -> String {
    match e {
        IndexExpr::Var(k) => (n.var)(*k),
        IndexExpr::Const(c) => {
            if *c < 0 {
                format!("({c})")
            } else {
                c.to_string()
            }
        }
        IndexExpr::Value(v) => {
            if n.idx == "int" {
                (n.value)(*v)
            } else {
                format!("(({}){})", n.idx, (n.value)(*v))
            }
        }
        IndexExpr::Add(a, b) => {
            // `x + (-3)` reads better as `x - 3`.
            if let IndexExpr::Const(c) = **b {
                if c < 0 {
                    return format!("({} - {})", render(a, n), c.unsigned_abs());
                }
            }
            format!("({} + {})", render(a, n), render(b, n))
        }
        IndexExpr::Mul(a, c) => format!("{} * {}", atom(a, n), signed(*c)),
        IndexExpr::Div(a, c) | IndexExpr::Mod(a, c) => {
            let div = matches!(e, IndexExpr::Div(..));
            let non_negative = range(a, n.extents, &mut Range::point(0)).lo >= 0;
            if non_negative {
                format!("({} {} {c})", atom(a, n), if div { "/" } else { "%" })
            } else {
                let f = if div { "kiln_floordiv" } else { "kiln_floormod" };
                if n.idx == "int" {
                    format!("{f}({}, {c})", render(a, n))
                } else {
                    format!("{f}({}, ({}){c})", render(a, n), n.idx)
                }
            }
        }
    }
}

fn signed(c: i64) -> String {
    if c < 0 {
        format!("({c})")
    } else {
        c.to_string()
    }
}

/// `e` rendered so that it can be an operand of `*`, `/` or `%` without re-association.
fn atom(e: &IndexExpr, n: &IndexNames) -> String {
    let s = render(e, n);
    match e {
        IndexExpr::Mul(..) => format!("({s})"),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<'a>(
        extents: &'a [usize],
        var: &'a dyn Fn(usize) -> String,
        value: &'a dyn Fn(ValueId) -> String,
    ) -> IndexNames<'a> {
        IndexNames {
            var,
            value,
            idx: "int",
            extents,
        }
    }

    #[test]
    fn renders_row_major_index() {
        let e = IndexExpr::var(0).mul(5).add(IndexExpr::var(1));
        let var = |k: usize| format!("i{k}");
        let value = |v: ValueId| format!("{v}");
        assert_eq!(render(&e, &names(&[3, 5], &var, &value)), "(i0 * 5 + i1)");
    }

    #[test]
    fn floor_division_only_when_negative_is_possible() {
        let var = |k: usize| format!("i{k}");
        let value = |v: ValueId| format!("{v}");
        let pos = IndexExpr::var(0).div(4);
        assert_eq!(render(&pos, &names(&[9], &var, &value)), "(i0 / 4)");
        let neg = IndexExpr::var(0).add(IndexExpr::Const(-2)).rem(3);
        assert_eq!(render(&neg, &names(&[9], &var, &value)), "kiln_floormod((i0 - 2), 3)");
    }

    #[test]
    fn range_tracks_widest_subexpression() {
        let e = IndexExpr::var(0).mul(1 << 20).mul(1 << 12).div(1 << 30);
        let mut w = Range::point(0);
        let r = range(&e, &[4], &mut w);
        assert_eq!((r.lo, r.hi), (0, 12));
        assert!(!w.fits_i32());
        let mut w = Range::point(0);
        let r = range(&IndexExpr::var(0).add(IndexExpr::Const(-2)).rem(3), &[9], &mut w);
        assert_eq!((r.lo, r.hi), (0, 2));
        assert_eq!(w.lo, -2);
    }
}
