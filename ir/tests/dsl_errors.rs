//! Bad graphs are rejected with messages that name the op, the shapes and the rule.

use kiln_ir::*;

fn mlp_loss(b: &GraphBuilder, x: &Tensor) -> Tensor {
    let l0 = b.scope("mlp").scope(0);
    let w0 = l0.param("weight", [4, 8], Init::KaimingUniform { fan_in: 4 });
    let b0 = l0.param("bias", [8], Init::Zeros);
    let h = (x.matmul(&w0) + &b0).relu();
    let l1 = b.scope("mlp").scope(1);
    let w1 = l1.param("weight", [8, 3], Init::KaimingUniform { fan_in: 8 });
    let logits = h.matmul(&w1);
    (&logits * &logits).mean_all()
}

#[test]
fn mlp_builds_with_hierarchical_names() {
    let b = GraphBuilder::new();
    let x = b.input("x", [5, 4], DType::F32);
    let loss = mlp_loss(&b, &x);
    b.output("loss", &loss);
    let g = b.finish().unwrap();
    assert!(g.source("mlp.0.weight").is_some());
    assert!(g.source("mlp.1.weight").is_some());
    assert_eq!(g.node(g.output("loss").unwrap()).ty, TensorType::new([], DType::F32));
    let text = g.to_string();
    assert!(text.contains("matmul"), "{text}");
    assert!(text.contains("param \"mlp.0.bias\" zeros : f32[8]"), "{text}");
}

#[test]
fn structural_hash_is_stable_and_discriminating() {
    let build = |n: usize| {
        let b = GraphBuilder::new();
        let x = b.input("x", [n, 4], DType::F32);
        let l = mlp_loss(&b, &x);
        b.output("loss", &l);
        b.finish().unwrap()
    };
    assert_eq!(build(5).structural_hash(), build(5).structural_hash());
    assert_ne!(build(5).structural_hash(), build(6).structural_hash());
}

fn err_of(f: impl FnOnce(&GraphBuilder)) -> String {
    let b = GraphBuilder::new();
    f(&b);
    b.finish().expect_err("graph should be rejected").to_string()
}

#[test]
fn matmul_inner_dimension_mismatch() {
    let m = err_of(|b| {
        let a = b.input("a", [3, 4], DType::F32);
        let w = b.input("w", [5, 6], DType::F32);
        a.matmul(&w);
    });
    assert!(
        m.contains("matmul") && m.contains("[3, 4]") && m.contains("[5, 6]") && m.contains("k=4"),
        "{m}"
    );
    assert!(m.contains("dsl_errors.rs"), "error should point at the DSL call: {m}");
}

#[test]
fn broadcasting_failure() {
    let m = err_of(|b| {
        let a = b.input("a", [2, 3], DType::F32);
        let c = b.input("c", [4], DType::F32);
        let _ = &a + &c;
    });
    assert!(
        m.contains("add") && m.contains("[2, 3]") && m.contains("[4]") && m.contains("broadcast"),
        "{m}"
    );
}

#[test]
fn wrong_dtype() {
    let m = err_of(|b| {
        let labels = b.input("y", [8], DType::I32);
        labels.exp();
    });
    assert!(m.contains("exp") && m.contains("i32") && m.contains("f32"), "{m}");
    let m = err_of(|b| {
        let x = b.input("x", [8], DType::F32);
        x.one_hot(10);
    });
    assert!(m.contains("one_hot") && m.contains("i32"), "{m}");
}

#[test]
fn reducing_a_missing_axis() {
    let m = err_of(|b| {
        let x = b.input("x", [2, 3], DType::F32);
        x.sum(&[2], false);
    });
    assert!(m.contains("sum") && m.contains("axis 2") && m.contains("[2, 3]"), "{m}");
}

#[test]
fn first_error_wins_and_poison_propagates() {
    let b = GraphBuilder::new();
    let x = b.input("x", [2, 3], DType::F32);
    let bad = x.reshape([7]);
    let worse = bad.exp().matmul(&x);
    assert!(worse.id().is_none());
    let m = b.finish().unwrap_err();
    assert!(matches!(m.root(), IrError::Shape { op: "reshape", .. }), "{m}");
}

#[test]
fn duplicate_names_and_bad_updates() {
    let m = err_of(|b| {
        b.param("w", [2], Init::Zeros);
        b.param("w", [2], Init::Zeros);
    });
    assert!(m.contains("`w` already exists"), "{m}");
    let m = err_of(|b| {
        let w = b.param("w", [2], Init::Zeros);
        let x = b.input("x", [3], DType::F32);
        b.update(&w, &x);
    });
    assert!(
        m.contains("update") && m.contains("f32[3]") && m.contains("f32[2]"),
        "{m}"
    );
}

#[test]
fn movement_validation() {
    let m = err_of(|b| {
        b.input("x", [2, 3], DType::F32).permute(&[0, 0]);
    });
    assert!(m.contains("permute") && m.contains("not a permutation"), "{m}");
    let m = err_of(|b| {
        b.input("x", [2, 3], DType::F32).slice(&[0, 2], &[2, 4], &[1, 1]);
    });
    assert!(m.contains("slice") && m.contains("axis 1"), "{m}");
    let m = err_of(|b| {
        let x = b.input("x", [2, 3], DType::F32);
        let y = b.input("y", [3, 3], DType::F32);
        x.concat(&[&y], 1);
    });
    assert!(m.contains("concat") && m.contains("[3, 3]"), "{m}");
    let m = err_of(|b| {
        b.input("x", [1, 1, 2, 2], DType::F32)
            .conv2d(&b.input("w", [1, 1, 3, 3], DType::F32), [1, 1], [0, 0]);
    });
    assert!(m.contains("unfold2d") && m.contains("does not fit"), "{m}");
}
