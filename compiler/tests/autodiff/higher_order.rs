//! Second derivatives: the backward graph is an ordinary graph, so differentiating
//! `sum(grad(f) · v)` gives the Hessian-vector product `H v` (what SVRH-style
//! optimizers need). Checked against central finite differences of the gradient.

use kiln_compiler::autodiff::grad_tensors;
use kiln_ir::{DType, GraphBuilder, Tensor};

use crate::gradcheck::{bindings_for, check, eval1, STEP};

/// Build f, its gradient g(x) and Hv = d/dx sum(g(x) · v); compare Hv with
/// (g(x + h v) - g(x - h v)) / 2h, and gradcheck sum(g · v) itself (w.r.t. x and v).
fn hvp_check(seed: u64, shape: &[usize], f: impl FnOnce(&Tensor) -> Tensor) {
    let b = GraphBuilder::new();
    let x = b.input("x", shape.to_vec(), DType::F32);
    let v = b.input("v", shape.to_vec(), DType::F32);
    let loss = f(&x);
    let g = grad_tensors(&loss, &[&x]).unwrap().remove(0);
    let gv = (&g * &v).sum_all();
    let hv = grad_tensors(&gv, &[&x]).unwrap().remove(0);
    let graph = b.finish().unwrap();
    let bind = bindings_for(&gv, seed);
    let hv_val = eval1(&graph, &bind, hv.id().unwrap());

    let shifted = |sign: f64| {
        let mut bb = bind.clone();
        let vdata = bind["v"].data.clone();
        for (xi, vi) in bb.get_mut("x").unwrap().data.iter_mut().zip(&vdata) {
            *xi += sign * STEP * vi;
        }
        eval1(&graph, &bb, g.id().unwrap())
    };
    let (gp, gm) = (shifted(1.0), shifted(-1.0));
    let scale = gp.data.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for i in 0..hv_val.data.len() {
        let fd = (gp.data[i] - gm.data[i]) / (2.0 * STEP);
        let ad = hv_val.data[i];
        assert!(
            (ad - fd).abs() <= 1e-8 * scale + 1e-6 * ad.abs().max(fd.abs()),
            "Hv[{i}]: autodiff {ad:e} vs finite difference of the gradient {fd:e}"
        );
    }
    // Second order, the other way round: sum(g·v) gradchecked w.r.t. x and v.
    check(&gv, &[&x, &v], &bind);
}

#[test]
fn hessian_vector_product_of_smooth_functions() {
    hvp_check(1, &[5], |x| (x * x * x).sum_all() + &x.sin().mul(x.exp()).sum_all());
    hvp_check(2, &[2, 3], |x| x.tanh().matmul(&x.t()).sigmoid().sum_all());
    hvp_check(3, &[3, 4], |x| {
        x.log_softmax(1).mul(x.cos()).sum_all() + &x.abs().sqrt().sum_all()
    });
    hvp_check(4, &[4], |x| (x.abs().powf(1.5) / &(x * x + 1.0)).sum_all());
}

#[test]
fn hessian_vector_product_through_a_small_network() {
    // A tanh MLP with its weights as the variable (x is the flattened W1 [3, 4]).
    let b = GraphBuilder::new();
    let w = b.input("w", [3, 4], DType::F32);
    let v = b.input("v", [3, 4], DType::F32);
    let data = b.input("data", [5, 3], DType::F32);
    let loss = data.matmul(&w).tanh().mean(&[1], false).powf(2.0).sum_all();
    let g = grad_tensors(&loss, &[&w]).unwrap().remove(0);
    let gv = (&g * &v).sum_all();
    let bind = bindings_for(&gv, 9);
    check(&gv, &[&w, &v, &data], &bind);
}

#[test]
fn third_derivative() {
    // d³/dx³ sum(x⁴)/24 = x: differentiate three times.
    let b = GraphBuilder::new();
    let x = b.input("x", [3], DType::F32);
    let f = (x.powf(4.0) / 24.0).sum_all();
    let g1 = grad_tensors(&f, &[&x]).unwrap().remove(0);
    let g2 = grad_tensors(&g1.sum_all(), &[&x]).unwrap().remove(0);
    let g3 = grad_tensors(&g2.sum_all(), &[&x]).unwrap().remove(0);
    let graph = b.finish().unwrap();
    let bind = bindings_for(&f, 11);
    let got = eval1(&graph, &bind, g3.id().unwrap());
    for (a, e) in got.data.iter().zip(&bind["x"].data) {
        assert!((a - e).abs() < 1e-12, "{a} vs {e}");
    }
}
