//! VJP rules of the elementwise ops: `Unary`, `Binary`, `PowConst`, `Select`, `Cast`.
//! Rules reuse the forward result `y` where that is the numerically sane form
//! (d tanh = 1 - y², d sigmoid = y(1 - y), d sqrt = 0.5 / y, d exp = y). They only
//! build nodes; they must not evaluate or simplify.

use kiln_ir::{BinaryOp, DType, Node, NodeId, Tensor, UnaryOp};

use super::Ctx;

/// Adjoint contribution of a unary op to its operand (`None`: zero gradient).
pub(super) fn unary(ctx: &Ctx, u: UnaryOp, id: NodeId, node: &Node, g: &Tensor) -> Option<Tensor> {
    let x = ctx.t(node.inputs[0]);
    let y = ctx.t(id);
    Some(match u {
        UnaryOp::Neg => -g,
        UnaryOp::Exp => g * &y,
        UnaryOp::Log => g / &x,
        // d sqrt(x) = 0.5 / sqrt(x)
        UnaryOp::Sqrt => (g / &y) * 0.5,
        // d x^-1/2 = -0.5 x^-3/2 = -0.5 y³
        UnaryOp::Rsqrt => g * &(&y * &y * &y) * -0.5,
        // d 1/x = -1/x² = -y²
        UnaryOp::Recip => -(g * &(&y * &y)),
        // sign(0) = 0: abs'(0) = 0.
        UnaryOp::Abs => g * &x.sign(),
        // Piecewise constant: zero almost everywhere.
        UnaryOp::Sign => return None,
        UnaryOp::Tanh => g * &(1.0 - &(&y * &y)),
        UnaryOp::Sigmoid => g * &(&y * &(1.0 - &y)),
        // relu'(0) = 0.
        UnaryOp::Relu => x.gt(0.0).select(g, zero(ctx)),
        UnaryOp::Sin => g * &x.cos(),
        UnaryOp::Cos => -(g * &x.sin()),
    })
}

/// Adjoint contributions of a binary op to its two operands.
pub(super) fn binary(
    ctx: &Ctx,
    op: BinaryOp,
    id: NodeId,
    node: &Node,
    g: &Tensor,
    need: &[bool],
) -> Vec<Option<Tensor>> {
    let a = ctx.t(node.inputs[0]);
    let b = ctx.t(node.inputs[1]);
    let (ga, gb) = match op {
        BinaryOp::Add => (need[0].then(|| g.clone()), need[1].then(|| g.clone())),
        BinaryOp::Sub => (need[0].then(|| g.clone()), need[1].then(|| -g)),
        BinaryOp::Mul => (need[0].then(|| g * &b), need[1].then(|| g * &a)),
        BinaryOp::Div => {
            // d(a/b)/da = 1/b; d(a/b)/db = -a/b² = -(1/b)·y.
            let g_over_b = g / &b;
            let gb = need[1].then(|| -(&g_over_b * &ctx.t(id)));
            (need[0].then_some(g_over_b), gb)
        }
        BinaryOp::Max | BinaryOp::Min => {
            // Weight of operand a: 1 where it wins, 1/2 on a tie, 0 where it loses.
            let wins = if op == BinaryOp::Max { a.gt(&b) } else { a.lt(&b) };
            let wa = wins.cast(DType::F32) + &(a.eq(&b).cast(DType::F32) * 0.5);
            let ga = g * &wa;
            let gb = need[1].then(|| g - &ga);
            (need[0].then_some(ga), gb)
        }
    };
    vec![ga, gb]
}

/// `x ^ e` with a constant exponent: `g · e · x^(e-1)`.
pub(super) fn pow_const(ctx: &Ctx, e: f64, node: &Node, g: &Tensor) -> Option<Tensor> {
    let x = ctx.t(node.inputs[0]);
    if e == 0.0 {
        return None;
    }
    Some(if e == 1.0 {
        g.clone()
    } else if e == 2.0 {
        g * &x * 2.0
    } else {
        g * &x.powf(e - 1.0) * e
    })
}

/// `select(c, t, f)`: the adjoint goes to `t` where `c` holds and to `f` elsewhere.
pub(super) fn select(ctx: &Ctx, node: &Node, g: &Tensor, need: &[bool]) -> Vec<Option<Tensor>> {
    let c = ctx.t(node.inputs[0]);
    let z = zero(ctx);
    vec![None, need[1].then(|| c.select(g, &z)), need[2].then(|| c.select(&z, g))]
}

/// Float-to-float casts pass the (f32) adjoint straight through. Casts to or from
/// integer/bool types never reach here: their integer side is never active.
pub(super) fn cast(ctx: &Ctx, node: &Node, g: &Tensor) -> Option<Tensor> {
    let from = ctx.fwd.node(node.inputs[0]).ty.dtype;
    (from.is_float() && node.ty.dtype.is_float()).then(|| g.clone())
}

fn zero(ctx: &Ctx) -> Tensor {
    ctx.b.constant(0.0, DType::F32)
}
