//! Composite checks: whole models gradchecked end to end (logistic regression, a
//! 2-layer MLP with cross-entropy, a small conv net with max-pool, an attention block
//! with layer norm), the composite DSL ops against their closed forms, and stability
//! of the losses and their gradients with logits of magnitude 1e3.

use kiln_compiler::autodiff::grad_tensors;
use kiln_ir::{Bindings, DType, GraphBuilder, Tensor, Value, Window2d};

use crate::gradcheck::{bindings_for, check, eval1, probe_loss, Rng};

fn labels(b: &mut Bindings, name: &str, n: usize, classes: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let l: Vec<i32> = (0..n).map(|_| rng.below(classes) as i32).collect();
    b.insert(name.into(), Value::from_i32([n], &l).unwrap());
}

#[test]
fn logistic_regression_and_linear_regression() {
    let b = GraphBuilder::new();
    let x = b.input("x", [17, 5], DType::F32);
    let y = b.input("y", [17, 1], DType::F32);
    let w = b.param("w", [5, 1], kiln_ir::Init::Zeros);
    let bias = b.param("b", [1], kiln_ir::Init::Zeros);
    let logits = x.matmul(&w) + &bias;
    let bce = logits.bce_with_logits(&y);
    let mut bind = bindings_for(&bce, 1);
    // Targets in [0, 1].
    for t in &mut bind.get_mut("y").unwrap().data {
        *t = (*t + 1.0) / 2.0;
    }
    check(&bce, &[&w, &bias, &x], &bind);
    let mse = logits.mse(&y);
    check(&mse, &[&w, &bias], &bind);
}

#[test]
fn two_layer_mlp_with_cross_entropy() {
    let b = GraphBuilder::new();
    let x = b.input("x", [7, 6], DType::F32);
    let lab = b.input("labels", [7], DType::I32);
    let w1 = b.param("w1", [6, 5], kiln_ir::Init::Zeros);
    let b1 = b.param("b1", [5], kiln_ir::Init::Zeros);
    let w2 = b.param("w2", [5, 3], kiln_ir::Init::Zeros);
    let b2 = b.param("b2", [3], kiln_ir::Init::Zeros);
    let h = (x.matmul(&w1) + &b1).relu();
    let loss = (h.matmul(&w2) + &b2).cross_entropy(&lab);
    let mut bind = bindings_for(&loss, 2);
    labels(&mut bind, "labels", 7, 3, 2);
    let rep = check(&loss, &[&w1, &b1, &w2, &b2], &bind);
    assert_eq!(rep.elements, 30 + 5 + 15 + 3);
}

#[test]
fn small_conv_net_with_max_pool() {
    // conv 3x3 (pad 1) -> +bias -> relu -> 2x2 max-pool (unfold + max) -> linear -> CE.
    let b = GraphBuilder::new();
    let img = b.input("img", [2, 2, 6, 5], DType::F32);
    let lab = b.input("labels", [2], DType::I32);
    let wc = b.param("conv.w", [3, 2, 3, 3], kiln_ir::Init::Zeros);
    let bc = b.param("conv.b", [3, 1, 1], kiln_ir::Init::Zeros);
    let wl = b.param("fc.w", [18, 4], kiln_ir::Init::Zeros);
    let a = (img.conv2d(&wc, [1, 1], [1, 1]) + &bc).relu(); // [2, 3, 6, 5]
    let pool = Window2d {
        kernel: [2, 2],
        stride: [2, 2],
        padding: [0, 0],
    };
    let cols = a.unfold2d(pool); // [2, 3*4, 3*2]
    let pooled = cols.reshape([2, 3, 4, 6]).max(&[2], false); // [2, 3, 6]
    let loss = pooled.reshape([2, 18]).matmul(&wl).cross_entropy(&lab);
    let mut bind = bindings_for(&loss, 3);
    labels(&mut bind, "labels", 2, 4, 3);
    check(&loss, &[&wc, &bc, &wl, &img], &bind);
}

#[test]
fn attention_block_with_layer_norm() {
    // y = softmax(Q Kᵀ / √d) V on layer-normed x, then a GELU projection.
    let (bsz, t, d) = (2, 3, 4);
    let b = GraphBuilder::new();
    let x = b.input("x", [bsz, t, d], DType::F32);
    let wq = b.param("wq", [d, d], kiln_ir::Init::Zeros);
    let wk = b.param("wk", [d, d], kiln_ir::Init::Zeros);
    let wv = b.param("wv", [d, d], kiln_ir::Init::Zeros);
    let wo = b.param("wo", [d, d], kiln_ir::Init::Zeros);
    let h = x.layer_norm(2, 1e-5);
    let (q, k, v) = (h.matmul(&wq), h.matmul(&wk), h.matmul(&wv));
    let att = (q.matmul(&k.t()) / (d as f64).sqrt()).softmax(2);
    let y = &x + &att.matmul(&v).gelu().matmul(&wo);
    let loss = probe_loss(&y);
    let bind = bindings_for(&loss, 4);
    check(&loss, &[&x, &wq, &wk, &wv, &wo], &bind);
}

#[test]
fn composite_ops_gradcheck_individually() {
    type F = fn(&Tensor) -> Tensor;
    let cases: [(&str, F); 7] = [
        ("softmax", |t| t.softmax(1)),
        ("log_softmax", |t| t.log_softmax(0)),
        ("logsumexp", |t| t.logsumexp(&[0, 2], false)),
        ("logsumexp_keep", |t| t.logsumexp(&[1], true)),
        ("layer_norm", |t| t.layer_norm(2, 1e-5)),
        ("gelu", |t| t.gelu()),
        ("softmax_last", |t| t.softmax(2)),
    ];
    for (k, (name, f)) in cases.iter().enumerate() {
        eprintln!("{name}");
        let b = GraphBuilder::new();
        let x = b.input("x", [3, 4, 5], DType::F32);
        let loss = probe_loss(&f(&x));
        let bind = bindings_for(&loss, 10 + k as u64);
        check(&loss, &[&x], &bind);
    }
}

fn values(t: &Tensor, bind: &Bindings) -> Vec<f64> {
    eval1(&t.builder().finish().unwrap(), bind, t.id().unwrap()).data
}

#[test]
fn composite_ops_match_their_closed_forms() {
    let b = GraphBuilder::new();
    let x = b.input("x", [2, 3], DType::F32);
    let lab = b.input("labels", [2], DType::I32);
    let tg = b.input("t", [2, 3], DType::F32);
    let outs = [
        x.softmax(1),
        x.log_softmax(1),
        x.logsumexp(&[1], false),
        x.cross_entropy(&lab),
        x.mse(&tg),
        x.bce_with_logits(&tg),
        x.layer_norm(1, 1e-5),
        x.gelu(),
    ];
    let xs = [0.5, -1.0, 2.0, 3.0, 3.0, -4.0];
    let ts = [0.0, 1.0, 0.25, 0.5, 1.0, 0.0];
    let mut bind = Bindings::new();
    bind.insert("x".into(), Value::new([2, 3], DType::F32, xs.to_vec()).unwrap());
    bind.insert("t".into(), Value::new([2, 3], DType::F32, ts.to_vec()).unwrap());
    bind.insert("labels".into(), Value::from_i32([2], &[2, 0]).unwrap());
    let row = |r: usize| &xs[3 * r..3 * r + 3];
    let lse = |r: usize| row(r).iter().map(|v| v.exp()).sum::<f64>().ln();
    let bce = |x: f64, t: f64| -(t * (1.0 / (1.0 + (-x).exp())).ln() + (1.0 - t) * (1.0 / (1.0 + x.exp())).ln());
    let ln = |i: usize| {
        let r = row(i / 3);
        let m = r.iter().sum::<f64>() / 3.0;
        let var = r.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 3.0;
        (xs[i] - m) / (var + 1e-5).sqrt()
    };
    let gelu = |x: f64| 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh());
    let want: Vec<Vec<f64>> = vec![
        (0..6).map(|i| (xs[i] - lse(i / 3)).exp()).collect(),
        (0..6).map(|i| xs[i] - lse(i / 3)).collect(),
        vec![lse(0), lse(1)],
        vec![((lse(0) - xs[2]) + (lse(1) - xs[3])) / 2.0],
        vec![(0..6).map(|i| (xs[i] - ts[i]).powi(2)).sum::<f64>() / 6.0],
        vec![(0..6).map(|i| bce(xs[i], ts[i])).sum::<f64>() / 6.0],
        (0..6).map(ln).collect(),
        xs.iter().map(|&v| gelu(v)).collect(),
    ];
    for (k, (o, w)) in outs.iter().zip(&want).enumerate() {
        let got = values(o, &bind);
        assert_eq!(got.len(), w.len(), "output {k}");
        for (g, e) in got.iter().zip(w) {
            assert!((g - e).abs() <= 1e-12 * e.abs().max(1.0), "output {k}: {g} vs {e}");
        }
    }
}

#[test]
fn composite_ops_report_bad_shapes() {
    let b = GraphBuilder::new();
    let x = b.input("x", [2, 3], DType::F32);
    let wrong = b.input("wrong", [3], DType::I32);
    let e = x.cross_entropy(&wrong).check().unwrap_err();
    assert!(e.to_string().contains("cross_entropy"), "{e}");
    let b = GraphBuilder::new();
    let x = b.input("x", [2, 3], DType::F32);
    let e = x.mse(&b.input("t", [3], DType::F32)).check().unwrap_err();
    assert!(
        e.to_string().contains("mse") && e.to_string().contains("same shape"),
        "{e}"
    );
}

/// Logits of magnitude 1e3 (spread so that the softmax is not one-hot everywhere):
/// forward values and gradients must be finite and equal the closed forms computed
/// stably in f64.
#[test]
fn large_logits_are_stable() {
    let (bsz, c) = (4, 5);
    let b = GraphBuilder::new();
    let x = b.input("x", [bsz, c], DType::F32);
    let lab = b.input("labels", [bsz], DType::I32);
    let tg = b.input("t", [bsz, c], DType::F32);
    let ce = x.cross_entropy(&lab);
    let lse = x.logsumexp(&[1], false).sum_all();
    let bce = x.bce_with_logits(&tg);
    let gs: Vec<Tensor> = [&ce, &lse, &bce]
        .iter()
        .map(|l| grad_tensors(l, &[&x]).unwrap().remove(0))
        .collect();
    let mut rng = Rng::new(77);
    let xs: Vec<f64> = (0..bsz * c)
        .map(|i| {
            let base = if i % 2 == 0 { 1000.0 } else { -1000.0 };
            base * (if i % 3 == 0 { 1.0 } else { -1.0 }) + rng.uniform(-2.0, 2.0)
        })
        .collect();
    let ts: Vec<f64> = (0..bsz * c).map(|_| rng.uniform(0.0, 1.0)).collect();
    let ls = [3, 0, 4, 1];
    let mut bind = Bindings::new();
    bind.insert("x".into(), Value::new([bsz, c], DType::F32, xs.clone()).unwrap());
    bind.insert("t".into(), Value::new([bsz, c], DType::F32, ts.clone()).unwrap());
    bind.insert("labels".into(), Value::from_i32([bsz], &ls).unwrap());
    let graph = b.finish().unwrap();

    // Closed forms, computed stably.
    let mut softmax = vec![0.0; bsz * c];
    let mut lse_rows = vec![0.0; bsz];
    for r in 0..bsz {
        let row = &xs[r * c..(r + 1) * c];
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
        lse_rows[r] = m + s.ln();
        for j in 0..c {
            softmax[r * c + j] = (row[j] - m).exp() / s;
        }
    }
    let sig = |v: f64| {
        if v >= 0.0 {
            1.0 / (1.0 + (-v).exp())
        } else {
            v.exp() / (1.0 + v.exp())
        }
    };
    let ce_val: f64 = (0..bsz).map(|r| lse_rows[r] - xs[r * c + ls[r] as usize]).sum::<f64>() / bsz as f64;
    let n = (bsz * c) as f64;
    let bce_val: f64 = (0..bsz * c)
        .map(|i| xs[i].max(0.0) - xs[i] * ts[i] + (-xs[i].abs()).exp().ln_1p())
        .sum::<f64>()
        / n;
    let ce_grad: Vec<f64> = (0..bsz * c)
        .map(|i| (softmax[i] - if ls[i / c] as usize == i % c { 1.0 } else { 0.0 }) / bsz as f64)
        .collect();
    let bce_grad: Vec<f64> = (0..bsz * c).map(|i| (sig(xs[i]) - ts[i]) / n).collect();

    let val = |t: &Tensor| eval1(&graph, &bind, t.id().unwrap()).data;
    let close = |got: &[f64], want: &[f64], what: &str| {
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(g.is_finite(), "{what}[{i}] is not finite: {g}");
            assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{what}[{i}]: {g} vs {w}");
        }
    };
    close(&val(&ce), &[ce_val], "cross_entropy");
    close(&val(&lse), &[lse_rows.iter().sum()], "logsumexp");
    close(&val(&bce), &[bce_val], "bce_with_logits");
    close(&val(&gs[0]), &ce_grad, "d cross_entropy");
    close(&val(&gs[1]), &softmax, "d logsumexp");
    close(&val(&gs[2]), &bce_grad, "d bce_with_logits");

    // And finite differences agree, at the default tolerance: the intermediate values
    // are ~1e3, so the finite differences carry ~1e-7 rounding error, which the
    // tolerance's absolute term (1e-8 · |loss|, with |loss| ~ 1e3) covers.
    for l in [&ce, &lse, &bce] {
        check(l, &[&x], &bind);
    }
}
