//! Kernel counts and kernel names for known graphs: these numbers are behaviour (a
//! change in them is a change in what kiln fuses). Every graph is also checked
//! against the interpreter in every lowering mode.

mod lower_util;

use kiln_compiler::kernel::{Kernel, Program};
use kiln_compiler::lower::{lower, LowerOptions};
use kiln_ir::{DType, Graph, GraphBuilder, Init, Tensor};
use lower_util::check;

fn names(p: &Program) -> Vec<String> {
    p.kernels.iter().map(|k| k.name().to_string()).collect()
}

fn fused(g: &Graph) -> Program {
    lower(g, &LowerOptions::fused()).unwrap()
}

/// A 20-op elementwise chain with broadcasting is one kernel.
#[test]
fn elementwise_chain_is_one_kernel() {
    let b = GraphBuilder::new();
    let x = b.input("x", [17, 783], DType::F32);
    let bias = b.input("bias", [783], DType::F32);
    let mut y = &x + &bias;
    for i in 0..19 {
        y = match i % 4 {
            0 => y.tanh(),
            1 => &y * 1.5,
            2 => &y - &x,
            _ => y.sigmoid(),
        };
    }
    b.output("y", &y);
    let g = b.finish().unwrap();
    let (f, u) = check(&g, 1);
    assert_eq!(names(&f), ["fused_add_tanh_mul_sub_sigmoid"], "{f}");
    assert!(u.launches() >= 20, "unfused runs one kernel per op: {}", u.launches());
}

fn mlp_forward(b: &GraphBuilder, x: &Tensor, sizes: &[usize]) -> Tensor {
    let mut h = x.clone();
    for (i, w) in sizes.windows(2).enumerate() {
        let wt = b.param(&format!("w{i}"), [w[0], w[1]], Init::Zeros);
        let bias = b.param(&format!("b{i}"), [w[1]], Init::Zeros);
        h = h.matmul(&wt) + &bias;
        if i + 2 < sizes.len() {
            h = h.relu();
        }
    }
    h
}

/// An N-layer MLP forward is N kernels: each matmul with its bias (+ReLU) epilogue.
#[test]
fn mlp_forward_is_one_kernel_per_layer() {
    let b = GraphBuilder::new();
    let x = b.input("x", [5, 13], DType::F32);
    let logits = mlp_forward(&b, &x, &[13, 7, 9, 3]);
    b.output("logits", &logits);
    let g = b.finish().unwrap();
    let (f, _) = check(&g, 2);
    assert_eq!(
        names(&f),
        ["fused_matmul_add_relu", "fused_matmul_add_relu", "fused_matmul_add"],
        "{f}"
    );
    assert!(f
        .kernels
        .iter()
        .all(|k| matches!(k, Kernel::MatMul(m) if m.epilogue.is_some())));
}

/// softmax cross-entropy is 2 kernels: one multi-stage row kernel (max, sum of exp,
/// picked log-probability) and the batch mean.
#[test]
fn softmax_cross_entropy_is_two_kernels() {
    let b = GraphBuilder::new();
    let x = b.input("x", [17, 10], DType::F32);
    let labels = b.input("labels", [17], DType::I32);
    b.output("loss", &x.cross_entropy(&labels));
    let g = b.finish().unwrap();
    let (f, _) = check(&g, 3);
    assert_eq!(f.launches(), 2, "{f}");
    let Kernel::Loop(row) = &f.kernels[0] else {
        panic!("{f}")
    };
    assert_eq!(row.outer, vec![17]);
    assert_eq!(row.stages.len(), 4, "max, sum exp, picked sum, store:\n{f}");
}

/// softmax and layer norm are one row kernel each.
#[test]
fn softmax_and_layer_norm_are_one_kernel() {
    for which in ["softmax", "layer_norm"] {
        let b = GraphBuilder::new();
        let x = b.input("x", [17, 33], DType::F32);
        let y = if which == "softmax" {
            x.softmax(1)
        } else {
            x.layer_norm(1, 1e-5)
        };
        b.output("y", &y);
        let g = b.finish().unwrap();
        let (f, _) = check(&g, 4);
        assert_eq!(f.launches(), 1, "{which}:\n{f}");
        assert!(f.kernels[0].name().starts_with("reduce_"), "{f}");
    }
}

/// An Adam-like update of several parameters (gradients given) is ONE kernel over
/// arenas, and every parameter and state is updated in place.
#[test]
fn optimizer_update_of_many_params_is_one_kernel() {
    let b = GraphBuilder::new();
    let lr = b.scalar("lr", DType::F32);
    let beta = b.scalar("beta", DType::F32);
    for (i, shape) in [vec![13, 7], vec![7], vec![1], vec![3, 5, 2]].into_iter().enumerate() {
        let p = b.param(&format!("p{i}"), shape.clone(), Init::Zeros);
        let g = b.input(&format!("grad{i}"), shape.clone(), DType::F32);
        let m = b.state(&format!("m{i}"), shape.clone(), Init::Zeros);
        let v = b.state(&format!("v{i}"), shape, Init::Zeros);
        let m2 = &m + &((&g - &m) * &beta);
        let v2 = &v * &beta + &(&g * &g);
        let p2 = &p - &(&m2 / &(v2.sqrt() + 1e-8) * &lr);
        b.update(&m, &m2);
        b.update(&v, &v2);
        b.update(&p, &p2);
    }
    let g = b.finish().unwrap();
    let (f, u) = check(&g, 5);
    assert_eq!(names(&f), ["horizontal_4x_fused_sub_mul_add_sqrt_div"], "{f}");
    assert!(f.updates.iter().all(|(t, v)| t == v), "every update in place:\n{f}");
    assert!(u.launches() > 40, "{}", u.launches());
}

/// Without the horizontal pass, each parameter's update is one kernel.
#[test]
fn per_parameter_updates_without_horizontal_fusion() {
    let b = GraphBuilder::new();
    let lr = b.scalar("lr", DType::F32);
    for i in 0..3 {
        let p = b.param(&format!("p{i}"), [5 + i], Init::Zeros);
        let g = b.input(&format!("grad{i}"), [5 + i], DType::F32);
        b.update(&p, &(&p - &(&g * &lr)));
    }
    let g = b.finish().unwrap();
    let opts = LowerOptions {
        horizontal: false,
        ..LowerOptions::fused()
    };
    assert_eq!(lower(&g, &opts).unwrap().launches(), 3);
    assert_eq!(fused(&g).launches(), 1);
}

/// Boundaries come with reasons.
#[test]
fn boundaries_have_reasons() {
    let b = GraphBuilder::new();
    let x = b.input("x", [4, 6], DType::F32);
    let e = x.exp();
    b.output("a", &e.sum(&[0], false));
    b.output("b", &e.sum(&[1], false));
    let g = b.finish().unwrap();
    let (f, u) = check(&g, 6);
    assert_eq!(f.launches(), 2, "{f}");
    assert!(
        f.not_fused.is_empty(),
        "exp is recomputed in both reductions, not stored:\n{f:?}"
    );
    assert!(u.not_fused.iter().all(|nf| nf.reason.contains("unfused")));
    assert_eq!(u.not_fused.len(), 2, "{:?}", u.not_fused);

    let b = GraphBuilder::new();
    let x = b.input("x", [4, 6], DType::F32);
    let s = x.sum(&[1], true);
    let y = (&x / &s).matmul(&x.t());
    b.output("y", &y);
    let g = b.finish().unwrap();
    let (f, _) = check(&g, 7);
    assert_eq!(names(&f), ["reduce_sum_div", "matmul"], "{f}");
    assert_eq!(f.not_fused.len(), 1, "{:?}", f.not_fused);
    assert!(f.not_fused[0].reason.contains("matmul operands"), "{:?}", f.not_fused);
}
