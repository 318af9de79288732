//! The autodiff API contract: errors for what cannot be differentiated, zeros for
//! unrelated wrt, pruning of off-path nodes, the DSL form agreeing with the graph
//! form, and gradients w.r.t. intermediate nodes.

use kiln_compiler::autodiff::{grad, grad_tensors, vjp_tensors};
use kiln_compiler::AutodiffError;
use kiln_ir::interp::evaluate_nodes;
use kiln_ir::{DType, GraphBuilder, NodeId, Op, UnaryOp};

use crate::gradcheck::{bindings_for, eval1, gradcheck, random_bindings};

#[test]
fn refuses_what_cannot_be_differentiated() {
    let b = GraphBuilder::new();
    let a = b.input("a", [3], DType::F32);
    let labels = b.input("labels", [3], DType::I32);
    let vec_loss = &a * 2.0;
    let int_loss = labels.sum_all();
    let loss = (&a * &labels.cast(DType::F32)).sum_all();
    let g = b.finish().unwrap();
    let (a, labels, loss, vec_loss, int_loss) = (
        a.id().unwrap(),
        labels.id().unwrap(),
        loss.id().unwrap(),
        vec_loss.id().unwrap(),
        int_loss.id().unwrap(),
    );

    let e = grad(&g, loss, &[a, labels]).unwrap_err();
    assert!(
        matches!(
            e,
            AutodiffError::WrtNotFloat {
                index: 1,
                dtype: DType::I32,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("i32"), "{e}");
    let e = grad(&g, vec_loss, &[a]).unwrap_err();
    assert!(matches!(e, AutodiffError::LossNotScalar { .. }), "{e}");
    assert!(e.to_string().contains("sum_all"), "{e}");
    let e = grad(&g, int_loss, &[a]).unwrap_err();
    assert!(matches!(e, AutodiffError::LossNotFloat { .. }), "{e}");
    let e = grad(&g, NodeId(999), &[a]).unwrap_err();
    assert_eq!(e, AutodiffError::UnknownNode(999));
    let e = grad(&g, loss, &[NodeId(1000)]).unwrap_err();
    assert_eq!(e, AutodiffError::UnknownNode(1000));
}

#[test]
fn dsl_errors_name_the_problem() {
    let b = GraphBuilder::new();
    let a = b.input("a", [3], DType::F32);
    let other = GraphBuilder::new().input("a", [3], DType::F32);
    let loss = a.sum_all();
    let e = grad_tensors(&loss, &[&other]).unwrap_err();
    assert!(matches!(e, AutodiffError::ForeignTensor { .. }), "{e}");

    // A builder that already holds an error reports it instead of differentiating.
    let bad = &a + &b.input("b", [4], DType::F32);
    let e = grad_tensors(&bad.sum_all(), &[&a]).unwrap_err();
    assert!(matches!(e, AutodiffError::Ir(_)), "{e}");

    let b = GraphBuilder::new();
    let a = b.input("a", [2, 3], DType::F32);
    let y = a.exp();
    let e = vjp_tensors(&y, &b.full(1.0, [3, 2], DType::F32), &[&a]).unwrap_err();
    assert!(matches!(e, AutodiffError::SeedMismatch { .. }), "{e}");
}

#[test]
fn unrelated_wrt_gets_zeros_and_the_graph_keeps_its_outputs() {
    let b = GraphBuilder::new();
    let a = b.input("a", [2, 3], DType::F32);
    let unused = b.param("w", [4, 1], kiln_ir::Init::Zeros);
    let loss = (&a * &a).sum_all();
    b.output("loss", &loss);
    let g = b.finish().unwrap();
    let (g2, ids) = grad(
        &g,
        loss.id().unwrap(),
        &[unused.id().unwrap(), a.id().unwrap(), a.id().unwrap()],
    )
    .unwrap();
    assert_eq!(g2.outputs(), g.outputs());
    assert_eq!(&g2.nodes()[..g.len()], g.nodes(), "forward nodes are untouched");
    let bind = random_bindings(&g2, 1);
    let vals = evaluate_nodes(&g2, &bind, &ids).unwrap();
    assert_eq!(vals[0].shape.dims(), &[4, 1]);
    assert!(vals[0].data.iter().all(|&v| v == 0.0));
    assert_eq!(ids[1], ids[2], "duplicated wrt share one gradient node");
    let want: Vec<f64> = bind["a"].data.iter().map(|v| 2.0 * v).collect();
    assert_eq!(vals[1].data, want);
}

#[test]
fn only_nodes_between_wrt_and_loss_get_backward_nodes() {
    let b = GraphBuilder::new();
    let x = b.input("x", [3, 4], DType::F32);
    let w = b.param("w", [4, 2], kiln_ir::Init::Zeros);
    let c = b.input("c", [5], DType::F32);
    // exp(c) feeds the loss but not from w; tanh(w) depends on w but not the loss.
    let side = w.tanh().sum_all();
    let ce = c.exp();
    let loss = x.matmul(&w).sin().sum_all() + &ce.sum_all();
    let g = b.finish().unwrap();
    let (g2, ids) = grad(&g, loss.id().unwrap(), &[w.id().unwrap()]).unwrap();
    let appended = &g2.nodes()[g.len()..];
    let count = |u: UnaryOp| appended.iter().filter(|n| n.op == Op::Unary(u)).count();
    assert_eq!(count(UnaryOp::Cos), 1, "sin's rule builds one cos");
    assert_eq!(count(UnaryOp::Exp), 0, "exp(c) is off the path from w");
    assert_eq!(count(UnaryOp::Tanh), 0, "tanh(w) does not reach the loss");
    let off_path = [ce.id().unwrap(), side.id().unwrap()];
    for n in appended {
        assert!(n.inputs.iter().all(|i| !off_path.contains(i)));
    }
    // No backward node for x either (it is not a wrt): the matmul rule builds dW only.
    assert_eq!(appended.iter().filter(|n| n.op == Op::MatMul).count(), 1);
    let bind = random_bindings(&g2, 2);
    gradcheck(&g, loss.id().unwrap(), &[w.id().unwrap()], &bind);
    assert_eq!(eval1(&g2, &bind, ids[0]).shape.dims(), &[4, 2]);
}

#[test]
fn grad_tensors_matches_grad_and_appends_to_the_builder() {
    let b = GraphBuilder::new();
    let a = b.input("a", [3, 2], DType::F32);
    let w = b.input("w", [2, 5], DType::F32);
    let loss = a.matmul(&w).tanh().mean_all();
    let g = b.finish().unwrap();
    let (g2, ids) = grad(&g, loss.id().unwrap(), &[a.id().unwrap(), w.id().unwrap()]).unwrap();
    let before = b.with_graph(|g| g.len());
    let gt = grad_tensors(&loss, &[&a, &w]).unwrap();
    assert!(b.with_graph(|g| g.len()) > before);
    let g3 = b.finish().unwrap();
    let bind = random_bindings(&g, 3);
    for (id, t) in ids.iter().zip(&gt) {
        assert_eq!(eval1(&g2, &bind, *id), eval1(&g3, &bind, t.id().unwrap()));
    }
}

#[test]
fn gradient_with_respect_to_an_intermediate_node() {
    // loss = sum(h²) with h = 3a + 1: d loss / d h = 2h, and wrt both h and a works.
    let b = GraphBuilder::new();
    let a = b.input("a", [4], DType::F32);
    let h = &a * 3.0 + 1.0;
    let loss = (&h * &h).sum_all();
    let gs = grad_tensors(&loss, &[&h, &a]).unwrap();
    let g = b.finish().unwrap();
    let bind = random_bindings(&g, 4);
    let (gh, ga) = (
        eval1(&g, &bind, gs[0].id().unwrap()),
        eval1(&g, &bind, gs[1].id().unwrap()),
    );
    for (i, &av) in bind["a"].data.iter().enumerate() {
        let hv = 3.0 * av + 1.0;
        assert!((gh.data[i] - 2.0 * hv).abs() < 1e-12);
        assert!((ga.data[i] - 6.0 * hv).abs() < 1e-12);
    }
}

#[test]
fn vjp_with_a_seed_is_the_gradient_of_the_seeded_sum() {
    let b = GraphBuilder::new();
    let a = b.input("a", [3, 4], DType::F32);
    let s = b.input("s", [3, 4], DType::F32);
    let y = a.sin() * &a;
    let v = vjp_tensors(&y, &s, &[&a]).unwrap();
    let loss = (&y * &s).sum_all();
    let g = grad_tensors(&loss, &[&a]).unwrap();
    let graph = b.finish().unwrap();
    let bind = bindings_for(&loss, 5);
    let (p, q) = (
        eval1(&graph, &bind, v[0].id().unwrap()),
        eval1(&graph, &bind, g[0].id().unwrap()),
    );
    assert!(p.max_abs_diff(&q).unwrap() < 1e-14);
}
