//! The closed op set of kiln's tensor IR. Owns the `Op` enum and the small enums it
//! carries; shape/dtype rules live in `infer`, semantics in `interp`.
//!
//! Design notes (the choices every later pass relies on):
//! - Elementwise ops (`Unary`, `Binary`, `Compare`, `Select`, `Cast`) take operands of
//!   the SAME shape. NumPy broadcasting is done by the DSL, which inserts explicit
//!   `Expand` (and `Reshape`) nodes, so autodiff sees broadcasts as ordinary ops.
//! - Movement ops (`Reshape`, `Expand`, `Permute`, `Slice`, `Pad`, `Concat`) carry
//!   their target in the node's shape or in their payload; fusion treats them as views.
//! - Convolution is not an op: `Unfold2d` (im2col) and its adjoint `Fold2d` (col2im,
//!   summing overlaps) are, and conv2d = unfold + matmul. Both are linear and each is
//!   the other's VJP, so the op set stays closed under differentiation.
//! - `Gather` takes rows along axis 0 (embeddings); its VJP uses `OneHot` + `MatMul`.
//! - `Random` is counter-based (Philox 4x32-10) and keyed by two i32 scalar operands
//!   (seed, step) plus the element index, so every backend draws the same numbers.

/// How a parameter or state tensor is initialised before the first step.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    Zeros,
    Constant(f64),
    Uniform {
        low: f64,
        high: f64,
    },
    Normal {
        mean: f64,
        std: f64,
    },
    /// PyTorch's `kaiming_uniform_(a=sqrt(5))` default for Linear/Conv weights:
    /// U(-b, b) with b = 1/sqrt(fan_in).
    KaimingUniform {
        fan_in: usize,
    },
    /// He normal: N(0, 2/fan_in) (for ReLU nets).
    KaimingNormal {
        fan_in: usize,
    },
    /// Glorot uniform: U(-b, b) with b = sqrt(6/(fan_in+fan_out)).
    XavierUniform {
        fan_in: usize,
        fan_out: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Neg,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Recip,
    Abs,
    /// -1, 0 or +1 (0 for ±0; NaN stays NaN). Used by the VJP of `Abs`.
    Sign,
    Tanh,
    Sigmoid,
    Relu,
    Sin,
    Cos,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
}

/// Comparisons; the result dtype is `Bool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    Sum,
    Max,
    Min,
    Mean,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Distribution {
    /// Uniform on the open interval (0, 1).
    Uniform,
    /// Standard normal (Box–Muller on two Philox words).
    Normal,
}

/// Window geometry shared by `Unfold2d` and `Fold2d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window2d {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl Window2d {
    /// Output spatial size for an input of `h x w`, or None when the window does not fit.
    pub fn output_size(&self, h: usize, w: usize) -> Option<[usize; 2]> {
        let f = |n: usize, k: usize, s: usize, p: usize| {
            let padded = n + 2 * p;
            if k == 0 || s == 0 || padded < k {
                None
            } else {
                Some((padded - k) / s + 1)
            }
        };
        Some([
            f(h, self.kernel[0], self.stride[0], self.padding[0])?,
            f(w, self.kernel[1], self.stride[1], self.padding[1])?,
        ])
    }
}

/// One IR operation. Operands are the node's `inputs`, in the order documented per variant.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    // ----- sources (no operands) -----
    /// Batch data fed every step (images, labels).
    Input {
        name: String,
    },
    /// A trainable parameter; persistent across steps.
    Param {
        name: String,
        init: Init,
    },
    /// Optimizer state; persistent across steps.
    State {
        name: String,
        init: Init,
    },
    /// A runtime scalar (learning rate, step count, seed): shape [], never recompiles.
    Scalar {
        name: String,
    },
    /// A tensor filled with one value (usually shape []).
    Const {
        value: f64,
    },
    /// Values equal to the index along `axis` (dtype i32 or f32).
    Iota {
        axis: usize,
    },
    /// Counter-based random numbers. Operands: `[seed, step]`, both i32 scalars;
    /// `stream` separates independent draws that share seed and step.
    Random {
        dist: Distribution,
        stream: u32,
    },

    // ----- elementwise (all operands have the node's shape) -----
    Unary(UnaryOp),
    Binary(BinaryOp),
    /// `x ^ exponent` with a compile-time exponent.
    PowConst {
        exponent: f64,
    },
    Compare(CompareOp),
    /// Operands `[cond (bool), on_true, on_false]`.
    Select,
    /// Convert to the node's dtype (f32→i32 truncates toward zero; →bool is `!= 0`).
    Cast,

    // ----- reductions -----
    /// Reduce over `axes` (sorted, unique). Without keepdims the axes are removed.
    Reduce {
        op: ReduceOp,
        axes: Vec<usize>,
        keepdims: bool,
    },
    /// Index of the maximum along `axis` (first one on ties), i32, axis removed.
    ArgMax {
        axis: usize,
    },

    // ----- movement (views where the backend can index them) -----
    /// Same elements, the node's shape.
    Reshape,
    /// NumPy broadcast of the operand to the node's shape.
    Expand,
    /// Output axis i is input axis `perm[i]`.
    Permute {
        perm: Vec<usize>,
    },
    /// Per axis `start..end` (end exclusive) taking every `step`-th element.
    Slice {
        starts: Vec<usize>,
        ends: Vec<usize>,
        steps: Vec<usize>,
    },
    /// Pad each axis with `low[i]` elements before and `high[i]` after, filled with `value`.
    Pad {
        low: Vec<usize>,
        high: Vec<usize>,
        value: f64,
    },
    /// Join operands along `axis`.
    Concat {
        axis: usize,
    },

    // ----- contractions and indexing -----
    /// Batched matmul: `[..., m, k] @ [..., k, n] -> [..., m, n]`, batch dims broadcast.
    MatMul,
    /// Operands `[table, indices(i32)]`: rows of `table` along axis 0.
    /// Result shape: `indices.shape ++ table.shape[1..]`. Out-of-range indices read 0.
    Gather,
    /// `indices(i32)` -> f32 one-hot with a trailing axis of `depth`
    /// (out-of-range indices give an all-zero row).
    OneHot {
        depth: usize,
    },
    /// im2col: `[N, C, H, W] -> [N, C*KH*KW, OH*OW]` (PyTorch `unfold` layout), zero padding.
    Unfold2d(Window2d),
    /// col2im, the adjoint of `Unfold2d`: `[N, C*KH*KW, OH*OW] -> [N, C, H, W]`,
    /// overlapping windows summed. `size` is the output `[H, W]`.
    Fold2d {
        window: Window2d,
        size: [usize; 2],
    },
}

impl Op {
    /// Short lowercase name used in printing, errors and kernel names.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Param { .. } => "param",
            Op::State { .. } => "state",
            Op::Scalar { .. } => "scalar",
            Op::Const { .. } => "const",
            Op::Iota { .. } => "iota",
            Op::Random { .. } => "random",
            Op::Unary(u) => match u {
                UnaryOp::Neg => "neg",
                UnaryOp::Exp => "exp",
                UnaryOp::Log => "log",
                UnaryOp::Sqrt => "sqrt",
                UnaryOp::Rsqrt => "rsqrt",
                UnaryOp::Recip => "recip",
                UnaryOp::Abs => "abs",
                UnaryOp::Sign => "sign",
                UnaryOp::Tanh => "tanh",
                UnaryOp::Sigmoid => "sigmoid",
                UnaryOp::Relu => "relu",
                UnaryOp::Sin => "sin",
                UnaryOp::Cos => "cos",
            },
            Op::Binary(b) => match b {
                BinaryOp::Add => "add",
                BinaryOp::Sub => "sub",
                BinaryOp::Mul => "mul",
                BinaryOp::Div => "div",
                BinaryOp::Max => "max",
                BinaryOp::Min => "min",
            },
            Op::PowConst { .. } => "pow",
            Op::Compare(c) => match c {
                CompareOp::Lt => "lt",
                CompareOp::Le => "le",
                CompareOp::Gt => "gt",
                CompareOp::Ge => "ge",
                CompareOp::Eq => "eq",
                CompareOp::Ne => "ne",
            },
            Op::Select => "select",
            Op::Cast => "cast",
            Op::Reduce { op, .. } => match op {
                ReduceOp::Sum => "sum",
                ReduceOp::Max => "reduce_max",
                ReduceOp::Min => "reduce_min",
                ReduceOp::Mean => "mean",
            },
            Op::ArgMax { .. } => "argmax",
            Op::Reshape => "reshape",
            Op::Expand => "expand",
            Op::Permute { .. } => "permute",
            Op::Slice { .. } => "slice",
            Op::Pad { .. } => "pad",
            Op::Concat { .. } => "concat",
            Op::MatMul => "matmul",
            Op::Gather => "gather",
            Op::OneHot { .. } => "one_hot",
            Op::Unfold2d(_) => "unfold2d",
            Op::Fold2d { .. } => "fold2d",
        }
    }

    /// Ops without operands whose value comes from outside the graph.
    pub fn is_source(&self) -> bool {
        matches!(
            self,
            Op::Input { .. } | Op::Param { .. } | Op::State { .. } | Op::Scalar { .. }
        )
    }

    /// The binding name of a source op.
    pub fn source_name(&self) -> Option<&str> {
        match self {
            Op::Input { name } | Op::Param { name, .. } | Op::State { name, .. } | Op::Scalar { name } => Some(name),
            _ => None,
        }
    }

    /// Pure elementwise ops: output element i depends only on operand elements i.
    pub fn is_elementwise(&self) -> bool {
        matches!(
            self,
            Op::Unary(_) | Op::Binary(_) | Op::PowConst { .. } | Op::Compare(_) | Op::Select | Op::Cast
        )
    }

    /// Movement ops: a re-indexing of the operand(s) with no arithmetic.
    pub fn is_movement(&self) -> bool {
        matches!(
            self,
            Op::Reshape | Op::Expand | Op::Permute { .. } | Op::Slice { .. } | Op::Pad { .. } | Op::Concat { .. }
        )
    }

    /// Reductions (a loop with an accumulator).
    pub fn is_reduction(&self) -> bool {
        matches!(self, Op::Reduce { .. } | Op::ArgMax { .. })
    }

    /// Always-float transcendental/rational unary ops (reject integer operands).
    pub fn needs_float(&self) -> bool {
        match self {
            Op::Unary(u) => !matches!(u, UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign | UnaryOp::Relu),
            Op::PowConst { .. } => true,
            Op::Binary(BinaryOp::Div) => true,
            _ => false,
        }
    }
}
