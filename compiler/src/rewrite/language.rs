//! The egg `Language` for kiln's whole op set (`KNode` = `KOp` + children) and the
//! e-class `Analysis` (`KAnalysis`): every e-class carries its result type, its value
//! when all elements are one known constant (constant folding happens here, with the
//! reference interpreter's own scalar semantics via `kiln_ir::interp::eval_op`), and
//! the value-range facts the rules' guards need (finite, non-negative, positive).
//!
//! This module owns the representation only. It must not hold rewrite rules, costs or
//! graph translation, and it never decides that two terms are equal (except that a
//! constant class gains its `const` node).

use std::cmp::Ordering;
use std::fmt;

use egg::{Analysis, DidMerge, EGraph, Id, Language};
use kiln_ir::infer::infer;
use kiln_ir::interp::eval_op;
use kiln_ir::{
    BinaryOp, CompareOp, DType, Distribution, NodeId, Op, ReduceOp, Shape, TensorType, UnaryOp, Value, Window2d,
};

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
fn root_type() -> TensorType {
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

/// What the analysis knows about one e-class.
#[derive(Clone, Debug, PartialEq)]
pub struct Data {
    /// Shape and dtype (every node of the class has it; rewrites never change it).
    pub ty: TensorType,
    /// Every element equals this value (NaN canonical).
    pub constant: Option<f64>,
    /// No element is NaN or ±inf, on any backend (f32 overflow included).
    pub finite: bool,
    /// No element is < 0 (NaN and -0 allowed).
    pub nonneg: bool,
    /// No element is <= 0 (NaN allowed).
    pub positive: bool,
}

impl Data {
    fn opaque(ty: TensorType) -> Data {
        let (finite, nonneg) = match ty.dtype {
            DType::I32 => (true, false),
            DType::Bool => (true, true),
            _ => (false, false),
        };
        Data {
            ty,
            constant: None,
            finite,
            nonneg,
            positive: false,
        }
    }

    /// Facts of a splat value `c` of type `ty`.
    fn of_constant(ty: TensorType, c: f64) -> Data {
        let c = canon(c);
        Data {
            finite: c.is_finite(),
            nonneg: !(c < 0.0),
            positive: !(c <= 0.0),
            constant: Some(c),
            ty,
        }
    }
}

fn canon(v: f64) -> f64 {
    f64::from_bits(float_bits(v))
}

/// The graph's sources (indexed by `KOp::Source`) and bookkeeping for the analysis.
#[derive(Clone, Debug, Default)]
pub struct KAnalysis {
    /// Type of each source, by source-table index.
    pub sources: Vec<TensorType>,
    /// The original node of each source, by source-table index.
    pub source_nodes: Vec<NodeId>,
    /// Nodes added whose type the IR rejected (always 0 unless a rule is wrong).
    pub type_errors: usize,
}

fn same_bits(a: f64, b: f64) -> bool {
    float_bits(a) == float_bits(b)
}

/// Value of the splat `op` on scalar operands, with the interpreter's semantics.
fn fold_scalar(op: &KOp, ty: &TensorType, args: &[f64], arg_types: &[&TensorType]) -> Option<f64> {
    let ir = op.to_op()?;
    let values: Vec<Value> = args
        .iter()
        .zip(arg_types)
        .map(|(&v, t)| Value::scalar(v, t.dtype))
        .collect();
    let refs: Vec<&Value> = values.iter().collect();
    let out = eval_op(&ir, &TensorType::new(Shape::scalar(), ty.dtype), &refs).ok()?;
    out.data.first().copied()
}

/// Splat value of a node whose operands are known, following `kiln_ir::interp`.
fn fold(op: &KOp, ty: &TensorType, kids: &[&Data]) -> Option<f64> {
    let c = |i: usize| kids.get(i).and_then(|d| d.constant);
    let arg_types: Vec<&TensorType> = kids.iter().map(|d| &d.ty).collect();
    match op {
        KOp::Const { bits, .. } => Some(f64::from_bits(*bits)),
        KOp::Unary(_) | KOp::Binary(_) | KOp::Pow(_) | KOp::Compare(_) | KOp::Select | KOp::Cast(_) => {
            let args: Option<Vec<f64>> = (0..kids.len()).map(c).collect();
            fold_scalar(op, ty, &args?, &arg_types)
        }
        KOp::Reshape(_) | KOp::Expand(_) | KOp::Permute(_) | KOp::Slice { .. } => c(0),
        KOp::Reduce { op: r, axes, .. } => {
            let v = c(0)?;
            let dims = kids[0].ty.shape.dims();
            let n: usize = axes.iter().map(|&a| dims[a]).product();
            let int = ty.dtype == DType::I32;
            Some(match (r, n) {
                (ReduceOp::Sum, _) if int => (v as i32 as u32).wrapping_mul(n as u32) as i32 as f64,
                (ReduceOp::Sum, _) => v * n as f64,
                (ReduceOp::Mean, 0) => f64::NAN,
                (ReduceOp::Max, 0) if int => i32::MIN as f64,
                (ReduceOp::Max, 0) => f64::NEG_INFINITY,
                (ReduceOp::Min, 0) if int => i32::MAX as f64,
                (ReduceOp::Min, 0) => f64::INFINITY,
                (ReduceOp::Mean | ReduceOp::Max | ReduceOp::Min, _) => v,
            })
        }
        KOp::ArgMax(_) => c(0).map(|_| 0.0),
        KOp::Pad { low, high, value } => {
            let v = c(0)?;
            let no_pad = low.iter().chain(high).all(|&p| p == 0);
            (no_pad || same_bits(v, f64::from_bits(*value))).then_some(v)
        }
        KOp::Concat(_) => {
            let v = c(0)?;
            (0..kids.len())
                .all(|i| c(i).is_some_and(|w| same_bits(v, w)))
                .then_some(v)
        }
        KOp::MatMul => {
            let (a, b) = (c(0)?, c(1)?);
            let k = kids[0].ty.shape.dims().last().copied()?;
            Some(if k == 0 { 0.0 } else { a * b * k as f64 })
        }
        KOp::Unfold2d(w) => {
            let v = c(0)?;
            (w.padding == [0, 0] || same_bits(v, 0.0)).then_some(v)
        }
        KOp::Fold2d { .. } | KOp::Gather => {
            let v = c(0)?;
            same_bits(v, 0.0).then_some(v)
        }
        _ => None,
    }
    .map(|v| ty.dtype.quantize(v))
}

/// Range facts of a node from its operands' facts (see `Data` for the meanings).
fn facts(op: &KOp, ty: &TensorType, kids: &[&Data]) -> (bool, bool, bool) {
    let all = |f: fn(&Data) -> bool| kids.iter().all(|d| f(d));
    let k0 = kids.first().copied();
    let fin0 = k0.is_some_and(|d| d.finite);
    let nn0 = k0.is_some_and(|d| d.nonneg);
    let pos0 = k0.is_some_and(|d| d.positive);
    let int_like = ty.dtype != DType::F32 && !ty.dtype.is_float();
    let (finite, nonneg, positive) = match op {
        KOp::Iota { .. } | KOp::OneHot(_) | KOp::ArgMax(_) | KOp::Compare(_) => (true, true, false),
        KOp::Random { dist, .. } => (true, *dist == Distribution::Uniform, *dist == Distribution::Uniform),
        KOp::Unary(u) => match u {
            UnaryOp::Neg => (fin0, false, false),
            UnaryOp::Exp => (false, true, false),
            UnaryOp::Log => (false, false, false),
            UnaryOp::Sqrt => (fin0 && nn0, true, pos0),
            UnaryOp::Rsqrt | UnaryOp::Recip => (false, pos0, false),
            UnaryOp::Abs => (fin0, true, pos0),
            UnaryOp::Sign => (fin0, nn0, pos0),
            UnaryOp::Tanh => (fin0, nn0, false),
            UnaryOp::Sigmoid => (fin0, true, false),
            UnaryOp::Relu => (fin0, true, pos0),
            UnaryOp::Sin | UnaryOp::Cos => (fin0, false, false),
        },
        KOp::Binary(b) => {
            let (a, c) = (kids[0], kids[1]);
            match b {
                BinaryOp::Add => (
                    false,
                    a.nonneg && c.nonneg,
                    (a.positive && c.nonneg) || (a.nonneg && c.positive),
                ),
                BinaryOp::Sub => (false, false, false),
                BinaryOp::Mul => (false, a.nonneg && c.nonneg, false),
                BinaryOp::Div => (false, a.nonneg && c.positive, false),
                BinaryOp::Max => (a.finite && c.finite, a.nonneg || c.nonneg, a.positive || c.positive),
                BinaryOp::Min => (a.finite && c.finite, a.nonneg && c.nonneg, a.positive && c.positive),
            }
        }
        KOp::Pow(e) => {
            let e = f64::from_bits(*e);
            let even = e.fract() == 0.0 && (e / 2.0).fract() == 0.0;
            (false, nn0 || even, false)
        }
        KOp::Select => {
            let (t, f) = (kids[1], kids[2]);
            (t.finite && f.finite, t.nonneg && f.nonneg, t.positive && f.positive)
        }
        KOp::Cast(_) => (true, nn0, pos0 && !int_like),
        KOp::Reduce { op: r, axes, .. } => {
            let dims = kids[0].ty.shape.dims();
            let n: usize = axes.iter().map(|&a| dims[a]).product();
            match r {
                ReduceOp::Sum | ReduceOp::Mean => (false, nn0, false),
                ReduceOp::Max | ReduceOp::Min => (fin0 && n > 0, nn0 && n > 0, pos0 && n > 0),
            }
        }
        KOp::Reshape(_) | KOp::Expand(_) | KOp::Permute(_) | KOp::Slice { .. } => (fin0, nn0, pos0),
        KOp::Pad { value, .. } => {
            let v = f64::from_bits(*value);
            (fin0 && v.is_finite(), nn0 && !(v < 0.0), pos0 && !(v <= 0.0))
        }
        KOp::Concat(_) => (all(|d| d.finite), all(|d| d.nonneg), all(|d| d.positive)),
        KOp::MatMul => (false, all(|d| d.nonneg), false),
        KOp::Gather | KOp::Fold2d { .. } => (fin0 && op == &KOp::Gather, nn0, false),
        KOp::Unfold2d(w) => (fin0, nn0, pos0 && w.padding == [0, 0]),
        KOp::Source(_) | KOp::Const { .. } | KOp::Root => (false, false, false),
    };
    // Integers and booleans are always finite; booleans are never negative.
    let finite = finite || int_like;
    let nonneg = nonneg || ty.dtype == DType::Bool;
    (finite, nonneg || positive, positive)
}

impl Analysis<KNode> for KAnalysis {
    type Data = Data;

    fn make(egraph: &mut KGraph, enode: &KNode, _id: Id) -> Data {
        let kids: Vec<&Data> = enode.children.iter().map(|&c| &egraph[c].data).collect();
        let types: Vec<&TensorType> = kids.iter().map(|d| &d.ty).collect();
        let ty = infer_type(&enode.op, &types, &egraph.analysis.sources);
        let Some(ty) = ty else {
            // Unreachable for translated graphs and checked rule output; recorded so
            // the rewriter can refuse the result instead of producing a bad graph.
            egraph.analysis.type_errors += 1;
            return Data::opaque(root_type());
        };
        match &enode.op {
            KOp::Source(_) => return Data::opaque(ty),
            KOp::Root => return Data::opaque(ty),
            _ => {}
        }
        if let Some(c) = fold(&enode.op, &ty, &kids) {
            return Data::of_constant(ty, c);
        }
        let (finite, nonneg, positive) = facts(&enode.op, &ty, &kids);
        Data {
            ty,
            constant: None,
            finite,
            nonneg,
            positive,
        }
    }

    fn merge(&mut self, to: &mut Data, from: Data) -> DidMerge {
        if to.ty != from.ty {
            // Rules are type-checked before they touch the e-graph; a mismatch means a
            // bug. Keep `to` and count it so the result is refused.
            self.type_errors += 1;
            return DidMerge(false, true);
        }
        let mut changed_to = false;
        let mut changed_from = false;
        match (to.constant, from.constant) {
            (None, Some(c)) => {
                to.constant = Some(c);
                changed_to = true;
            }
            (Some(_), None) => changed_from = true,
            (Some(a), Some(b)) => changed_from |= !same_bits(a, b),
            (None, None) => {}
        }
        for (t, f) in [
            (&mut to.finite, from.finite),
            (&mut to.nonneg, from.nonneg),
            (&mut to.positive, from.positive),
        ] {
            if f && !*t {
                *t = true;
                changed_to = true;
            }
            if *t && !f {
                changed_from = true;
            }
        }
        DidMerge(changed_to, changed_from)
    }

    fn modify(egraph: &mut KGraph, id: Id) {
        let data = &egraph[id].data;
        let Some(c) = data.constant else { return };
        let op = KOp::Const {
            bits: float_bits(c),
            shape: data.ty.shape.clone(),
            dtype: data.ty.dtype,
        };
        if egraph[id].nodes.iter().any(|n| n.op == op) {
            return;
        }
        let added = egraph.add(KNode::new(op, vec![]));
        egraph.union(id, added);
    }
}
