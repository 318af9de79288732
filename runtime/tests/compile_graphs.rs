//! Whole graphs through `kiln_runtime::compile`: fused CPU == unfused CPU == reference
//! interpreter (also with the e-graph rewriter, and with the scalar/no-FMA code path)
//! for every op family on odd shapes, and a full MLP training step (forward,
//! cross-entropy, autodiff backward, Adam update) over several steps.

mod compile_util;

use compile_util::*;
use kiln_compiler::autodiff::grad_tensors;
use kiln_ir::interp::Bindings;
use kiln_ir::{DType, Distribution, GraphBuilder, Init, SourceKind, Tensor, Value, Window2d};

fn with_scalars(mut b: Bindings, scalars: &[(&str, f64, DType)]) -> Bindings {
    for &(n, v, t) in scalars {
        b.insert(n.to_string(), Value::scalar(v, t));
    }
    b
}

#[test]
fn elementwise_chains_with_broadcasting() {
    for (r, c) in [(1usize, 1usize), (3, 17), (17, 783), (2, 4097)] {
        let b = GraphBuilder::new();
        let x = b.input("x", [r, c], DType::F32);
        let y = b.input("y", [c], DType::F32);
        let s = b.scalar("s", DType::F32);
        let t = (&x * &y + &s).tanh() - x.exp() / (x.abs() + 1.0);
        let u = t.maximum(&(&x * 0.1)).sigmoid() + x.sin() * y.cos() - x.relu().sqrt();
        let w = (&u * &u).powf(1.5) + (x.clone() - 2.0).recip() + u.sign() - x.neg().minimum(&y);
        let z = w.gt(0.0).select(w.log(), &u) + (x.gt(&y)).cast(DType::F32) * x.rsqrt().abs();
        b.output("u", &u);
        b.output("z", &z.ge(&u).select(&z, &u));
        let g = b.finish().unwrap();
        let inputs = with_scalars(random_inputs(&g, 1, 10), &[("s", 0.375, DType::F32)]);
        check_graph(&format!("chain [{r}, {c}]"), &g, &inputs, 1, 1e-5);
    }
}

#[test]
fn reductions_and_argmax() {
    for (a, bd, c) in [(3usize, 5usize, 7usize), (17, 1, 33), (1, 783, 3)] {
        let b = GraphBuilder::new();
        let x = b.input("x", [a, bd, c], DType::F32);
        let k = b.input("k", [a, bd, c], DType::I32);
        b.output("s0", &x.sum(&[0], false));
        b.output("s12", &x.sum(&[1, 2], true));
        b.output("m1", &x.mean(&[1], false));
        b.output("mx2", &x.max(&[2], false));
        b.output("mn02", &x.min(&[0, 2], false));
        b.output("all", &x.sum_all());
        b.output("am2", &x.argmax(2));
        b.output("am0", &x.argmax(0));
        b.output("ki", &k.sum(&[1], false));
        b.output("kmax", &k.max(&[0, 1], false));
        let g = b.finish().unwrap();
        check_graph(
            &format!("reduce [{a}, {bd}, {c}]"),
            &g,
            &random_inputs(&g, 2, 50),
            1,
            1e-5,
        );
    }
}

#[test]
fn softmax_cross_entropy_layernorm_gelu() {
    for (r, c) in [(1usize, 3usize), (23, 41), (7, 1000)] {
        let b = GraphBuilder::new();
        let x = b.input("x", [r, c], DType::F32);
        let labels = b.input("labels", [r], DType::I32);
        b.output("softmax", &x.softmax(1));
        b.output("log_softmax", &(&x * 3.0).log_softmax(1));
        b.output("ce", &x.cross_entropy(&labels));
        b.output("ln", &x.layer_norm(1, 1e-5));
        b.output("gelu", &x.gelu());
        b.output("lse0", &x.logsumexp(&[0], false));
        let g = b.finish().unwrap();
        check_graph(
            &format!("softmax family [{r}, {c}]"),
            &g,
            &random_inputs(&g, 3, c as u64),
            1,
            1e-5,
        );
    }
}

#[test]
fn movement_ops_as_views() {
    let b = GraphBuilder::new();
    let x = b.input("x", [6, 35], DType::F32);
    let y = b.input("y", [5, 7, 6], DType::F32);
    let r = x.reshape([5, 7, 6]) + &y;
    let p = r.permute(&[2, 0, 1]).reshape([6, 35]) * &x;
    let s = p.slice(&[1, 2], &[6, 33], &[2, 3]);
    let pd = s.pad(&[1, 0], &[2, 3], -0.5);
    let cc = pd.concat(&[&pd.exp(), &pd], 1);
    b.output("cc", &cc);
    b.output("t", &x.t().sum(&[1], false));
    b.output("bc", &(x.sum(&[1], true).broadcast_to([6, 35]) - &x));
    let g = b.finish().unwrap();
    check_graph("movement", &g, &random_inputs(&g, 4, 10), 1, 1e-5);
}

#[test]
fn matmuls_gathers_convolution() {
    let b = GraphBuilder::new();
    let a = b.input("a", [2, 17, 9], DType::F32);
    let w = b.input("w", [9, 13], DType::F32);
    let bias = b.input("bias", [13], DType::F32);
    let m = (a.matmul(&w) + &bias).relu();
    b.output("mm", &m);
    b.output("mmt", &m.matmul(&w.t()));
    let table = b.input("table", [11, 6], DType::F32);
    let idx = b.input("idx", [4, 5], DType::I32);
    b.output("gather", &table.gather(&idx));
    b.output("onehot", &idx.one_hot(11));
    let img = b.input("img", [2, 3, 9, 8], DType::F32);
    let kern = b.input("kern", [4, 3, 3, 3], DType::F32);
    let conv = img.conv2d(&kern, [2, 1], [1, 1]);
    b.output("conv", &conv.tanh());
    let win = Window2d {
        kernel: [3, 3],
        stride: [2, 1],
        padding: [1, 1],
    };
    b.output("fold", &img.unfold2d(win).fold2d(win, [9, 8]));
    b.output("iota", &(b.iota([5, 7], 1, DType::I32) * 3));
    let g = b.finish().unwrap();
    // Indices in [-2, 13): some out of range on purpose (they read zeros).
    let mut inputs = random_inputs(&g, 5, 15);
    let iv = inputs.get_mut("idx").unwrap();
    for x in iv.data.iter_mut() {
        *x -= 2.0;
    }
    check_graph("matmul/gather/conv", &g, &inputs, 1, 1e-5);
}

#[test]
fn random_draws_keyed_by_runtime_scalars() {
    let b = GraphBuilder::new();
    let seed = b.scalar("seed", DType::I32);
    let step = b.scalar("step", DType::I32);
    let x = b.input("x", [13, 31], DType::F32);
    let noise = Tensor::random(&seed, &step, [13, 31], Distribution::Normal, 2);
    let mask = Tensor::random(&seed, &step, [13, 31], Distribution::Uniform, 1).lt(0.3);
    b.output("y", &mask.select(&(&x + &noise * 0.1), &(&x * 0.0)));
    let g = b.finish().unwrap();
    let inputs = with_scalars(
        random_inputs(&g, 6, 10),
        &[("seed", 1234.0, DType::I32), ("step", 7.0, DType::I32)],
    );
    check_graph("random", &g, &inputs, 1, 1e-5);
}

/// An MLP training step: forward, cross-entropy, gradients, Adam (state m, v per param).
fn mlp_train_graph(sizes: &[usize], batch: usize) -> kiln_ir::Graph {
    let b = GraphBuilder::new();
    let x = b.input("x", [batch, sizes[0]], DType::F32);
    let labels = b.input("labels", [batch], DType::I32);
    let lr = b.scalar("lr", DType::F32);
    let mut h = x.clone();
    for (i, w) in sizes.windows(2).enumerate() {
        let wt = b.param(&format!("w{i}"), [w[0], w[1]], Init::KaimingUniform { fan_in: w[0] });
        let bias = b.param(&format!("b{i}"), [w[1]], Init::Uniform { low: -0.1, high: 0.1 });
        h = h.matmul(&wt) + &bias;
        if i + 2 < sizes.len() {
            h = h.relu();
        }
    }
    let loss = h.cross_entropy(&labels);
    b.output("loss", &loss);
    let params: Vec<Tensor> = b
        .with_graph(|g| g.sources_of(SourceKind::Param))
        .into_iter()
        .map(|id| b.tensor(id))
        .collect();
    let grads = grad_tensors(&loss, &params.iter().collect::<Vec<_>>()).unwrap();
    for (p, gr) in params.iter().zip(&grads) {
        let name = b.with_graph(|g| g.node(p.id().unwrap()).op.source_name().unwrap().to_string());
        let m = b.state(&format!("{name}.m"), p.shape(), Init::Zeros);
        let v = b.state(&format!("{name}.v"), p.shape(), Init::Zeros);
        let m2 = &m * 0.9 + gr * 0.1;
        let v2 = &v * 0.999 + &(gr * gr) * 0.001;
        let upd = &m2 / &(v2.sqrt() + 1e-8);
        b.update(p, &(p - &(&upd * &lr)));
        b.update(&m, &m2);
        b.update(&v, &v2);
    }
    b.finish().unwrap()
}

#[test]
fn mlp_train_step_matches_the_interpreter() {
    let g = mlp_train_graph(&[784, 64, 32, 10], 17);
    let inputs = with_scalars(random_inputs(&g, 7, 10), &[("lr", 1e-3, DType::F32)]);
    check_graph("mlp adam", &g, &inputs, 3, 2e-4);
}
