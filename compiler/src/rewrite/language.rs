//! The egg `Language` for kiln's whole op set: `KNode` = `KOp` (an IR op with the
//! payloads that fix its result type, floats as hashable bit patterns) + operand
//! e-classes, its ordering and printing, conversion to and from IR ops, and type
//! inference through the IR's own `infer`.
//!
//! This module owns the representation only. It must not hold the analysis
//! (`analysis.rs`), rewrite rules, costs or graph translation.

use std::cmp::Ordering;
use std::fmt;

use egg::{EGraph, Id, Language};
use kiln_ir::infer::infer;
use kiln_ir::{BinaryOp, CompareOp, DType, Distribution, Op, ReduceOp, Shape, TensorType, UnaryOp, Window2d};

pub use super::analysis::{Data, KAnalysis};

/// The e-graph type of the rewriter.
pub type KGraph = EGraph<KNode, KAnalysis>;

/// One operation of the rewriter's language: an IR `Op` with every payload that
/// decides the result type (shapes, dtypes) and hashable floats (`f64` bit patterns,
/// NaN canonicalised). Sources refer to the translated graph's source table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KOp {
    /// Index into `KAnalysis::sources` (an input/param/state/scalar of the graph).
    Source(u32),
    Const {
        bits: u64,
        shape: Shape,
        dtype: DType,
    },
    Iota {
        axis: usize,
        shape: Shape,
        dtype: DType,
    },
    Random {
        dist: Distribution,
        stream: u32,
        shape: Shape,
    },
    Unary(UnaryOp),
    Binary(BinaryOp),
    Pow(u64),
    Compare(CompareOp),
    Select,
    Cast(DType),
    Reduce {
        op: ReduceOp,
        axes: Vec<usize>,
        keepdims: bool,
    },
    ArgMax(usize),
    Reshape(Shape),
    Expand(Shape),
    Permute(Vec<usize>),
    Slice {
        starts: Vec<usize>,
        ends: Vec<usize>,
        steps: Vec<usize>,
    },
    Pad {
        low: Vec<usize>,
        high: Vec<usize>,
        value: u64,
    },
    Concat(usize),
    MatMul,
    Gather,
    OneHot(usize),
    Unfold2d(Window2d),
    Fold2d {
        window: Window2d,
        size: [usize; 2],
    },
    /// The tuple of every output value and update value of the step (never rewritten).
    Root,
}

/// Canonical bit pattern of a float payload (all NaNs become one NaN).
pub fn float_bits(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

impl KOp {
    fn tag(&self) -> u8 {
        match self {
            KOp::Source(_) => 0,
            KOp::Const { .. } => 1,
            KOp::Iota { .. } => 2,
            KOp::Random { .. } => 3,
            KOp::Unary(_) => 4,
            KOp::Binary(_) => 5,
            KOp::Pow(_) => 6,
            KOp::Compare(_) => 7,
            KOp::Select => 8,
            KOp::Cast(_) => 9,
            KOp::Reduce { .. } => 10,
            KOp::ArgMax(_) => 11,
            KOp::Reshape(_) => 12,
            KOp::Expand(_) => 13,
            KOp::Permute(_) => 14,
            KOp::Slice { .. } => 15,
            KOp::Pad { .. } => 16,
            KOp::Concat(_) => 17,
            KOp::MatMul => 18,
            KOp::Gather => 19,
            KOp::OneHot(_) => 20,
            KOp::Unfold2d(_) => 21,
            KOp::Fold2d { .. } => 22,
            KOp::Root => 23,
        }
    }

    /// A small code naming the operation without its payload shapes (the e-graph's
    /// per-op index key): the variant, plus the unary/binary/compare/reduce kind.
    pub fn kind(&self) -> u16 {
        let sub = match self {
            KOp::Unary(u) => *u as u16,
            KOp::Binary(b) => *b as u16,
            KOp::Compare(c) => *c as u16,
            KOp::Reduce { op, .. } => *op as u16,
            _ => 0,
        };
        (self.tag() as u16) << 5 | sub
    }

    /// The IR op this stands for (sources excluded: they come from the source table).
    pub fn to_op(&self) -> Option<Op> {
        Some(match self {
            KOp::Source(_) | KOp::Root => return None,
            KOp::Const { bits, .. } => Op::Const {
                value: f64::from_bits(*bits),
            },
            KOp::Iota { axis, .. } => Op::Iota { axis: *axis },
            KOp::Random { dist, stream, .. } => Op::Random {
                dist: *dist,
                stream: *stream,
            },
            KOp::Unary(u) => Op::Unary(*u),
            KOp::Binary(b) => Op::Binary(*b),
            KOp::Pow(e) => Op::PowConst {
                exponent: f64::from_bits(*e),
            },
            KOp::Compare(c) => Op::Compare(*c),
            KOp::Select => Op::Select,
            KOp::Cast(_) => Op::Cast,
            KOp::Reduce { op, axes, keepdims } => Op::Reduce {
                op: *op,
                axes: axes.clone(),
                keepdims: *keepdims,
            },
            KOp::ArgMax(axis) => Op::ArgMax { axis: *axis },
            KOp::Reshape(_) => Op::Reshape,
            KOp::Expand(_) => Op::Expand,
            KOp::Permute(perm) => Op::Permute { perm: perm.clone() },
            KOp::Slice { starts, ends, steps } => Op::Slice {
                starts: starts.clone(),
                ends: ends.clone(),
                steps: steps.clone(),
            },
            KOp::Pad { low, high, value } => Op::Pad {
                low: low.clone(),
                high: high.clone(),
                value: f64::from_bits(*value),
            },
            KOp::Concat(axis) => Op::Concat { axis: *axis },
            KOp::MatMul => Op::MatMul,
            KOp::Gather => Op::Gather,
            KOp::OneHot(depth) => Op::OneHot { depth: *depth },
            KOp::Unfold2d(w) => Op::Unfold2d(*w),
            KOp::Fold2d { window, size } => Op::Fold2d {
                window: *window,
                size: *size,
            },
        })
    }

    /// The `KOp` of an IR op whose result type is `ty`; `source` is the source-table
    /// index for sources.
    pub fn from_op(op: &Op, ty: &TensorType, source: Option<u32>) -> Option<KOp> {
        Some(match op {
            Op::Input { .. } | Op::Param { .. } | Op::State { .. } | Op::Scalar { .. } => KOp::Source(source?),
            Op::Const { value } => KOp::Const {
                bits: float_bits(*value),
                shape: ty.shape.clone(),
                dtype: ty.dtype,
            },
            Op::Iota { axis } => KOp::Iota {
                axis: *axis,
                shape: ty.shape.clone(),
                dtype: ty.dtype,
            },
            Op::Random { dist, stream } => KOp::Random {
                dist: *dist,
                stream: *stream,
                shape: ty.shape.clone(),
            },
            Op::Unary(u) => KOp::Unary(*u),
            Op::Binary(b) => KOp::Binary(*b),
            Op::PowConst { exponent } => KOp::Pow(float_bits(*exponent)),
            Op::Compare(c) => KOp::Compare(*c),
            Op::Select => KOp::Select,
            Op::Cast => KOp::Cast(ty.dtype),
            Op::Reduce { op, axes, keepdims } => KOp::Reduce {
                op: *op,
                axes: axes.clone(),
                keepdims: *keepdims,
            },
            Op::ArgMax { axis } => KOp::ArgMax(*axis),
            Op::Reshape => KOp::Reshape(ty.shape.clone()),
            Op::Expand => KOp::Expand(ty.shape.clone()),
            Op::Permute { perm } => KOp::Permute(perm.clone()),
            Op::Slice { starts, ends, steps } => KOp::Slice {
                starts: starts.clone(),
                ends: ends.clone(),
                steps: steps.clone(),
            },
            Op::Pad { low, high, value } => KOp::Pad {
                low: low.clone(),
                high: high.clone(),
                value: float_bits(*value),
            },
            Op::Concat { axis } => KOp::Concat(*axis),
            Op::MatMul => KOp::MatMul,
            Op::Gather => KOp::Gather,
            Op::OneHot { depth } => KOp::OneHot(*depth),
            Op::Unfold2d(w) => KOp::Unfold2d(*w),
            Op::Fold2d { window, size } => KOp::Fold2d {
                window: *window,
                size: *size,
            },
        })
    }

    /// The result type this op declares itself (ops whose type operands do not fix).
    fn declared(&self) -> Option<(Option<Shape>, Option<DType>)> {
        match self {
            KOp::Const { shape, dtype, .. } | KOp::Iota { shape, dtype, .. } => {
                Some((Some(shape.clone()), Some(*dtype)))
            }
            KOp::Random { shape, .. } => Some((Some(shape.clone()), Some(DType::F32))),
            KOp::Reshape(s) | KOp::Expand(s) => Some((Some(s.clone()), None)),
            KOp::Cast(d) => Some((None, Some(*d))),
            _ => None,
        }
    }
}

fn window_key(w: &Window2d) -> ([usize; 2], [usize; 2], [usize; 2]) {
    (w.kernel, w.stride, w.padding)
}

impl Ord for KOp {
    fn cmp(&self, other: &Self) -> Ordering {
        use KOp::*;
        match (self, other) {
            (Source(a), Source(b)) => a.cmp(b),
            (
                Const {
                    bits: a,
                    shape: s,
                    dtype: d,
                },
                Const {
                    bits: b,
                    shape: t,
                    dtype: e,
                },
            ) => (a, s, d).cmp(&(b, t, e)),
            (
                Iota {
                    axis: a,
                    shape: s,
                    dtype: d,
                },
                Iota {
                    axis: b,
                    shape: t,
                    dtype: e,
                },
            ) => (a, s, d).cmp(&(b, t, e)),
            (
                Random {
                    dist: a,
                    stream: s,
                    shape: x,
                },
                Random {
                    dist: b,
                    stream: t,
                    shape: y,
                },
            ) => (*a as u8, s, x).cmp(&(*b as u8, t, y)),
            (Unary(a), Unary(b)) => (*a as u8).cmp(&(*b as u8)),
            (Binary(a), Binary(b)) => (*a as u8).cmp(&(*b as u8)),
            (Pow(a), Pow(b)) => a.cmp(b),
            (Compare(a), Compare(b)) => (*a as u8).cmp(&(*b as u8)),
            (Cast(a), Cast(b)) => a.cmp(b),
            (
                Reduce {
                    op: a,
                    axes: x,
                    keepdims: k,
                },
                Reduce {
                    op: b,
                    axes: y,
                    keepdims: l,
                },
            ) => (*a as u8, x, k).cmp(&(*b as u8, y, l)),
            (ArgMax(a), ArgMax(b)) | (Concat(a), Concat(b)) | (OneHot(a), OneHot(b)) => a.cmp(b),
            (Reshape(a), Reshape(b)) | (Expand(a), Expand(b)) => a.cmp(b),
            (Permute(a), Permute(b)) => a.cmp(b),
            (
                Slice {
                    starts: a,
                    ends: b,
                    steps: c,
                },
                Slice {
                    starts: x,
                    ends: y,
                    steps: z,
                },
            ) => (a, b, c).cmp(&(x, y, z)),
            (
                Pad {
                    low: a,
                    high: b,
                    value: c,
                },
                Pad {
                    low: x,
                    high: y,
                    value: z,
                },
            ) => (a, b, c).cmp(&(x, y, z)),
            (Unfold2d(a), Unfold2d(b)) => window_key(a).cmp(&window_key(b)),
            (Fold2d { window: a, size: s }, Fold2d { window: b, size: t }) => {
                (window_key(a), s).cmp(&(window_key(b), t))
            }
            _ => self.tag().cmp(&other.tag()),
        }
    }
}

impl PartialOrd for KOp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for KOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KOp::Source(i) => write!(f, "source#{i}"),
            KOp::Root => write!(f, "root"),
            KOp::Const { bits, shape, dtype } => write!(f, "const {} : {dtype}{shape}", f64::from_bits(*bits)),
            KOp::Reshape(s) => write!(f, "reshape{s}"),
            KOp::Expand(s) => write!(f, "expand{s}"),
            KOp::Cast(d) => write!(f, "cast[{d}]"),
            other => match other.to_op() {
                Some(op) => f.write_str(&kiln_ir::print::op_label(&op)),
                None => write!(f, "{other:?}"),
            },
        }
    }
}

/// An e-node: an operation and its operand e-classes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KNode {
    pub op: KOp,
    pub children: Vec<Id>,
}

impl KNode {
    pub fn new(op: KOp, children: Vec<Id>) -> Self {
        KNode { op, children }
    }
}

impl Language for KNode {
    type Discriminant = u16;

    fn discriminant(&self) -> u16 {
        self.op.kind()
    }

    fn matches(&self, other: &Self) -> bool {
        self.op == other.op && self.children.len() == other.children.len()
    }

    fn children(&self) -> &[Id] {
        &self.children
    }

    fn children_mut(&mut self) -> &mut [Id] {
        &mut self.children
    }
}

impl fmt::Display for KNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.op)
    }
}

/// Type of the root tuple e-class (it has no tensor type of its own).
pub(crate) fn root_type() -> TensorType {
    TensorType::new(Shape::scalar(), DType::Bool)
}

/// Result type of `op` applied to operands of `children` types, by the IR's own
/// inference; `None` when the IR would reject the node.
pub fn infer_type(op: &KOp, children: &[&TensorType], sources: &[TensorType]) -> Option<TensorType> {
    match op {
        KOp::Source(i) => return sources.get(*i as usize).cloned(),
        KOp::Root => return Some(root_type()),
        _ => {}
    }
    let ir = op.to_op()?;
    let declared = match op.declared() {
        None => None,
        Some((shape, dtype)) => {
            let shape = shape.or_else(|| children.first().map(|t| t.shape.clone()))?;
            let dtype = dtype.or_else(|| children.first().map(|t| t.dtype))?;
            Some(TensorType::new(shape, dtype))
        }
    };
    infer(&ir, children, declared.as_ref()).ok()
}
