//! Whole-graph behaviour of the rewriter: switching it off, the step's interface
//! (sources, output names, update targets) surviving, sharing surviving extraction,
//! limits reported with a valid graph, the float policy pinned on NaN/±inf/-0 inputs,
//! and regression counts on known graphs (an MLP forward with a hand-written Adam-like
//! update, the MLP forward+backward from autodiff, the MLP+VSGD training step).

use std::collections::BTreeMap;
use std::time::Duration;

use egg::Id;
use kiln_compiler::autodiff::grad_tensors;
use kiln_compiler::rewrite::extract::{extract_greedy_dag, extract_tree};
use kiln_compiler::rewrite::language::{float_bits, KAnalysis, KGraph, KNode, KOp};
use kiln_compiler::rewrite::{rewrite, verify, RewriteOptions, RewriteStats, StopReason};
use kiln_ir::interp::evaluate;
use kiln_ir::{DType, Graph, GraphBuilder, Init, Op, SourceKind, Tensor, TensorType, UnaryOp, Value};
use kiln_models::nets::{Mlp, Model};
use kiln_models::optim::{build_phase, Phase, Vsgd};

fn options() -> RewriteOptions {
    RewriteOptions {
        time_limit: Duration::from_secs(30),
        ..RewriteOptions::default()
    }
}

fn rewrite_checked(g: &Graph, opts: &RewriteOptions) -> (Graph, RewriteStats) {
    let (out, st) = rewrite(g, opts);
    assert!(st.fallback.is_none(), "fell back:\n{st}");
    assert_eq!(st.rejected_proposals, 0, "{st}");
    if let Err(e) = verify::check(g, &out, 4, 1e-9) {
        panic!("unsound rewrite: {e}\nbefore:\n{g}\nafter:\n{out}\n{st}");
    }
    (out, st)
}

/// Live op counts by op name.
fn histogram(g: &Graph) -> BTreeMap<&'static str, usize> {
    let live = g.live_mask();
    let mut h = BTreeMap::new();
    for id in g.ids().filter(|id| live[id.index()]) {
        let op = &g.node(id).op;
        if !op.is_source() && !matches!(op, Op::Const { .. }) {
            *h.entry(op.name()).or_insert(0) += 1;
        }
    }
    h
}

fn count_op(g: &Graph, name: &str) -> usize {
    histogram(g).get(name).copied().unwrap_or(0)
}

// ----- on/off, interface -----

#[test]
fn switched_off_returns_the_input_unchanged() {
    let b = GraphBuilder::new();
    let x = b.input("x", [3], DType::F32);
    b.output("y", &(&x * 1.0 + 0.0));
    let g = b.finish().unwrap();
    let (out, st) = rewrite(&g, &RewriteOptions::disabled());
    assert_eq!(out, g);
    assert!(!st.enabled);
    assert!(st.phases.is_empty() && st.rule_applications.is_empty());
    assert_eq!((st.ops_before, st.ops_after), (4, 4));
    assert!(st.to_string().contains("off"), "{st}");
}

#[test]
fn sources_outputs_and_updates_survive() {
    let b = GraphBuilder::new();
    let x = b.input("x", [2, 3], DType::F32);
    let _unused = b.input("unused", [5], DType::F32);
    let labels = b.input("labels", [2], DType::I32);
    let w = b.param("layer.w", [3, 4], Init::KaimingUniform { fan_in: 3 });
    let m = b.state("layer.w.m", [3, 4], Init::Constant(0.5));
    let lr = b.scalar("optim.lr", DType::F32);
    let h = x.matmul(&w) * 1.0;
    let loss = h.sum_all() + labels.cast(DType::F32).sum_all();
    let m2 = &m * 0.9 + &w * 0.1;
    // Outputs in a deliberate order, one aliasing a source and two the same value.
    b.output("loss", &loss);
    b.output("x_again", &x);
    b.output("h", &h);
    b.output("h_too", &(&h + 0.0 * 1.0 - 0.0));
    b.update(&w, &(&w - &(&m2 * &lr)));
    b.update(&m, &m2);
    let g = b.finish().unwrap();
    let (out, _) = rewrite_checked(&g, &options());

    let sources = |g: &Graph| -> Vec<(Op, TensorType)> {
        g.ids()
            .filter(|&id| g.node(id).op.is_source())
            .map(|id| (g.node(id).op.clone(), g.node(id).ty.clone()))
            .collect()
    };
    assert_eq!(
        sources(&out),
        sources(&g),
        "sources (names, kinds, inits, types) and their order"
    );
    let names = |g: &Graph| g.outputs().iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&out), names(&g));
    let targets = |g: &Graph| {
        g.updates()
            .iter()
            .map(|(t, _)| g.node(*t).op.source_name().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(targets(&out), targets(&g));
    assert_eq!(out.output("x_again"), out.source("x"));
    assert_eq!(out.output("h"), out.output("h_too"), "equal values become one node");
    assert_eq!(out.sources_of(SourceKind::Param).len(), 1);
}

#[test]
fn graphs_without_work_are_fine() {
    let b = GraphBuilder::new();
    let x = b.input("x", [2], DType::F32);
    let g = b.finish().unwrap();
    let (out, st) = rewrite_checked(&g, &options());
    assert_eq!(out.len(), 1);
    assert_eq!(st.ops_after, 0);
    b.output("x", &x);
    let g = b.finish().unwrap();
    let (out, _) = rewrite_checked(&g, &options());
    assert_eq!(out.output("x"), out.source("x"));
}

/// Every op of the IR goes through the e-graph and back: a graph using all of them
/// (convolution as unfold + matmul, col2im, gather, one_hot, iota, random, argmax,
/// pad, slice, concat, casts, selects, every reduction) rewrites into an equivalent
/// graph.
#[test]
fn every_op_survives_the_round_trip() {
    let b = GraphBuilder::new();
    let img = b.input("img", [2, 3, 5, 5], DType::F32);
    let kernel = b.param("conv.w", [4, 3, 3, 3], Init::Normal { mean: 0.0, std: 1.0 });
    let conv = img.conv2d(&kernel, [1, 1], [1, 1]);
    let window = kiln_ir::Window2d {
        kernel: [3, 3],
        stride: [2, 2],
        padding: [1, 1],
    };
    let cols = img.unfold2d(window);
    let back = cols.fold2d(window, [5, 5]);
    let table = b.input("table", [7, 4], DType::F32);
    let idx = b.input("idx", [3], DType::I32);
    let rows = table.gather(&idx);
    let hot = idx.one_hot(7);
    let iota = b.iota([3, 4], 1, DType::F32);
    let seed = b.scalar("seed", DType::I32);
    let step = b.scalar("step", DType::I32);
    let noise = Tensor::random(&seed, &step, [3, 4], kiln_ir::Distribution::Normal, 3);
    let noise2 = Tensor::random(&seed, &step, [3, 4], kiln_ir::Distribution::Normal, 3);
    let mixed = &rows + &iota + &noise * &noise2;
    let am = mixed.argmax(1);
    let padded = mixed.pad(&[1, 0], &[0, 2], -1.5);
    let sliced = padded.slice(&[0, 1], &[4, 6], &[2, 3]);
    let cat = sliced.concat(&[&sliced.exp()], 0);
    let sel = mixed.gt(0.0).select(&mixed, mixed.tanh());
    let reds = mixed.sum(&[0], false) + mixed.mean(&[0], false) + mixed.max(&[0], false) + mixed.min(&[0], false);
    b.output("conv", &conv);
    b.output("back", &back);
    b.output("hot", &hot.matmul(&table));
    b.output("argmax", &am.cast(DType::F32));
    b.output("cat", &cat);
    b.output("sel", &sel.powf(3.0).sigmoid().relu().abs().sign());
    b.output("reds", &reds.sqrt().rsqrt().recip().log().sin().cos().neg());
    b.output("int", &idx.mul(2).maximum(1).minimum(5).abs().neg());
    let g = b.finish().unwrap();
    let (out, st) = rewrite_checked(&g, &options());
    assert!(st.nodes_after <= st.nodes_before, "{st}");
    assert_eq!(count_op(&out, "random"), 1, "equal Philox draws are one node:\n{out}");
    for op in [
        "unfold2d", "fold2d", "gather", "one_hot", "iota", "argmax", "pad", "slice", "concat",
    ] {
        assert_eq!(count_op(&out, op), count_op(&g, op), "{op}");
    }
}

// ----- sharing -----

#[test]
fn shared_nodes_stay_shared() {
    let b = GraphBuilder::new();
    let x = b.input("x", [4, 5], DType::F32);
    let y = b.input("y", [4, 5], DType::F32);
    let e = x.exp();
    // The same exp is written three times (CSE merges them) and used by several
    // outputs and an update.
    let e2 = x.exp();
    let p = b.param("p", [4, 5], Init::Zeros);
    b.output("a", &(&e * 2.0));
    b.output("b", &(&e2 + &y));
    b.output("c", &(x.exp() * 1.0).sum(&[1], false));
    b.update(&p, &(&p - &e));
    let g = b.finish().unwrap();
    assert_eq!(count_op(&g, "exp"), 3);
    let (out, st) = rewrite_checked(&g, &options());
    assert_eq!(count_op(&out, "exp"), 1, "{out}");
    assert!(st.nodes_after < st.nodes_before);
}

/// An e-graph where the tree cost and the DAG cost disagree: class Y is either
/// `s + s` (s = exp(exp(x)) counted once in a DAG, twice in a tree) or `-z` with
/// z = log(log(log(x))), which is dearer than s but cheaper than two of it.
#[test]
fn extraction_counts_shared_classes_once() {
    let ty = TensorType::new([4], DType::F32);
    let mut eg = KGraph::new(KAnalysis {
        sources: vec![ty.clone()],
        source_nodes: vec![kiln_ir::NodeId(0)],
        type_errors: 0,
    });
    let node = |op: KOp, kids: &[Id]| KNode::new(op, kids.to_vec());
    let x = eg.add(node(KOp::Source(0), &[]));
    let e1 = eg.add(node(KOp::Unary(UnaryOp::Exp), &[x]));
    let s = eg.add(node(KOp::Unary(UnaryOp::Exp), &[e1]));
    let add = eg.add(node(KOp::Binary(kiln_ir::BinaryOp::Add), &[s, s]));
    let mut z = x;
    for _ in 0..3 {
        z = eg.add(node(KOp::Unary(UnaryOp::Log), &[z]));
    }
    let neg = eg.add(node(KOp::Unary(UnaryOp::Neg), &[z]));
    eg.union(add, neg);
    eg.rebuild();
    let root = eg.add(node(KOp::Root, &[add]));
    eg.rebuild();

    let dag = extract_greedy_dag(&eg, root).expect("acyclic");
    let tree = extract_tree(&eg, root).expect("acyclic");
    let y = eg.find(add);
    assert_eq!(
        dag.choice[&y].op,
        KOp::Binary(kiln_ir::BinaryOp::Add),
        "DAG cost shares s"
    );
    assert_eq!(tree.choice[&y].op, KOp::Unary(UnaryOp::Neg), "tree cost counts s twice");
    // exp and log cost 1 + 8*4 = 33 each, add and neg 1 + 4 = 5.
    assert_eq!(dag.cost, 5.0 + 2.0 * 33.0);
    assert_eq!(tree.cost, 5.0 + 3.0 * 33.0);
    assert!(dag.cost < tree.cost);
    // Every class of the result appears once, operands before users.
    let pos: BTreeMap<Id, usize> = dag.order.iter().enumerate().map(|(i, &c)| (c, i)).collect();
    assert_eq!(pos.len(), dag.order.len());
    for c in &dag.order {
        for k in &dag.choice[c].children {
            assert!(pos[k] < pos[c]);
        }
    }
}

#[test]
fn divisions_by_one_divisor_share_a_reciprocal() {
    let b = GraphBuilder::new();
    let x = b.input("x", [3, 4], DType::F32);
    let y = b.input("y", [3, 4], DType::F32);
    let z = b.input("z", [3, 4], DType::F32);
    let s = &y.exp() + &z;
    b.output("a", &(&x / &s));
    b.output("b", &(&y / &s));
    b.output("c", &(x.sin() / &s));
    b.output("single", &(&x / &z));
    // s/s is exactly 1 and stays a division: s*(1/s) can miss 1 by a rounding, and
    // (s/s - 1) is then no longer 0 (found by the fuzzer as 1/(x/x - 1)).
    b.output("one", &(1.0 / (&s / &s - 1.0)));
    let g = b.finish().unwrap();
    let (out, st) = rewrite_checked(&g, &options());
    assert_eq!(st.shared_divisors, 3, "{st}");
    assert_eq!((count_op(&out, "recip"), count_op(&out, "div")), (1, 3), "{out}");
}

// ----- limits -----

fn mlp_adam_graph(features: usize, hidden: usize, classes: usize, batch: usize) -> Graph {
    let b = GraphBuilder::new();
    let x = b.input("x", [batch, features], DType::F32);
    let labels = b.input("labels", [batch], DType::I32);
    let mlp = Mlp {
        features,
        hidden: vec![hidden, hidden],
        classes,
    };
    let logits = mlp.forward(&b, &x);
    b.output("loss", &logits.cross_entropy(&labels));
    // A hand-written Adam-like update on gradient inputs, with its constants
    // written the way people write them.
    let (b1, b2, lr, eps) = (0.9, 0.999, 1e-3, 1e-8);
    let params = b.with_graph(|g| g.sources_of(SourceKind::Param));
    let t = b.scalar("t_corr", DType::F32);
    for id in params {
        let p = b.tensor(id);
        let name = b.with_graph(|g| g.node(id).op.source_name().unwrap().to_string());
        let g = b.input(&format!("grad.{name}"), p.shape(), DType::F32);
        let m = b.state(&format!("{name}.m"), p.shape(), Init::Zeros);
        let v = b.state(&format!("{name}.v"), p.shape(), Init::Zeros);
        let m2 = &m * b1 + &g * (1.0 - b1);
        let v2 = &v * b2 + g.powf(2.0) * (1.0 - b2);
        let mhat = &m2 / (1.0 - b1) * &t;
        let vhat = &v2 / (1.0 - b2);
        let step = (&mhat * lr) / (vhat.sqrt() + eps) * 1.0;
        b.update(&p, &(&p - &step + 0.0));
        b.update(&m, &m2);
        b.update(&v, &v2);
    }
    b.finish().unwrap()
}

#[test]
fn limits_stop_saturation_and_are_reported() {
    let g = mlp_adam_graph(6, 8, 3, 4);
    let iter1 = RewriteOptions {
        iter_limit: 1,
        ..options()
    };
    let (_, st) = rewrite_checked(&g, &iter1);
    assert!(
        st.phases.iter().any(|p| p.stop_reason == StopReason::IterationLimit(1)),
        "{st}"
    );
    assert!(st.hit_limit());

    let nodes = RewriteOptions {
        node_limit: 40,
        ..options()
    };
    let (out, st) = rewrite_checked(&g, &nodes);
    assert!(matches!(st.phases[0].stop_reason, StopReason::NodeLimit(_)), "{st}");
    assert!(st.phases[1..]
        .iter()
        .all(|p| matches!(p.stop_reason, StopReason::NotRun(_))));
    // Even then, CSE and folding from building the e-graph apply.
    assert!(st.ops_after < st.ops_before, "{st}\n{out}");

    let no_time = RewriteOptions {
        time_limit: Duration::ZERO,
        ..options()
    };
    let (_, st) = rewrite_checked(&g, &no_time);
    assert!(matches!(st.phases[0].stop_reason, StopReason::TimeLimit(_)), "{st}");
    assert!(st.to_string().contains("time limit"), "{st}");
}

#[test]
fn self_check_option_and_idempotence() {
    let g = mlp_adam_graph(5, 7, 3, 2);
    let opts = RewriteOptions {
        self_check_seeds: 4,
        ..options()
    };
    let (once, st1) = rewrite_checked(&g, &opts);
    assert!(st1.fallback.is_none());
    let (twice, st2) = rewrite_checked(&once, &opts);
    assert_eq!(
        st2.ops_after, st1.ops_after,
        "a second rewrite finds nothing new:\n{twice}"
    );
    assert!(st2.cost_after <= st1.cost_after);
}

// ----- float policy pins -----

fn eval1(g: &Graph, name: &str, inputs: &[(&str, f64)]) -> f64 {
    let mut b = kiln_ir::Bindings::new();
    for (n, v) in inputs {
        b.insert(n.to_string(), Value::scalar(*v, DType::F32));
    }
    let e = evaluate(g, &b).unwrap();
    e.output(g, name).unwrap().data[0]
}

#[test]
fn nan_inf_and_signed_zeros_survive() {
    let b = GraphBuilder::new();
    let x = b.scalar("x", DType::F32);
    let y = b.scalar("y", DType::F32);
    b.output("x_times_0", &(&x * 0.0));
    b.output("x_minus_x", &(&x - &x));
    b.output("x_plus_0", &(&x + 0.0));
    b.output("recip_neg", &(1.0 / (&x - &y).neg()));
    b.output("factored", &(&x * &y + &x * 2.0));
    let g = b.finish().unwrap();
    let (out, _) = rewrite_checked(&g, &options());
    for (xv, yv) in [
        (f64::NAN, 1.0),
        (f64::INFINITY, 1.0),
        (f64::NEG_INFINITY, f64::NEG_INFINITY),
        (-0.0, 0.0),
        (0.0, -0.0),
        (2.0, 2.0),
    ] {
        for name in ["x_times_0", "x_minus_x", "x_plus_0", "recip_neg", "factored"] {
            let a = eval1(&g, name, &[("x", xv), ("y", yv)]);
            let r = eval1(&out, name, &[("x", xv), ("y", yv)]);
            assert_eq!(float_bits(a), float_bits(r), "{name} at x={xv}, y={yv}: {a} vs {r}");
        }
    }
    assert!(eval1(&out, "x_times_0", &[("x", f64::NAN), ("y", 0.0)]).is_nan());
    assert!(eval1(&out, "x_minus_x", &[("x", f64::INFINITY), ("y", 0.0)]).is_nan());
    assert!(eval1(&out, "x_plus_0", &[("x", -0.0), ("y", 0.0)]).is_sign_positive());
}

// ----- regression numbers on known graphs -----

fn mlp_forward_backward(features: usize, hidden: usize, classes: usize, batch: usize) -> Graph {
    let b = GraphBuilder::new();
    let x = b.input("x", [batch, features], DType::F32);
    let labels = b.input("labels", [batch], DType::I32);
    let mlp = Mlp {
        features,
        hidden: vec![hidden, hidden],
        classes,
    };
    let loss = mlp.forward(&b, &x).cross_entropy(&labels);
    let params: Vec<Tensor> = b
        .with_graph(|g| g.sources_of(SourceKind::Param))
        .into_iter()
        .map(|id| b.tensor(id))
        .collect();
    let refs: Vec<&Tensor> = params.iter().collect();
    let grads = grad_tensors(&loss, &refs).expect("autodiff");
    b.output("loss", &loss);
    for (p, g) in params.iter().zip(&grads) {
        let name = b.with_graph(|gr| gr.node(p.id().unwrap()).op.source_name().unwrap().to_string());
        b.output(&format!("grad.{name}"), g);
    }
    b.finish().unwrap()
}

fn mlp_vsgd_step(features: usize, hidden: usize, classes: usize, batch: usize) -> Graph {
    deep_mlp_vsgd_step(features, &[hidden, hidden], classes, batch)
}

fn deep_mlp_vsgd_step(features: usize, hidden: &[usize], classes: usize, batch: usize) -> Graph {
    let b = GraphBuilder::new();
    let x = b.input("x", [batch, features], DType::F32);
    let labels = b.input("labels", [batch], DType::I32);
    let mlp = Mlp {
        features,
        hidden: hidden.to_vec(),
        classes,
    };
    let loss = mlp.forward(&b, &x).cross_entropy(&labels);
    b.output("loss", &loss);
    let params: Vec<Tensor> = b
        .with_graph(|g| g.sources_of(SourceKind::Param))
        .into_iter()
        .map(|id| b.tensor(id))
        .collect();
    let mut grads = |point: &kiln_models::optim::EvalPoint| {
        let refs: Vec<&Tensor> = point.params.iter().collect();
        Ok(grad_tensors(&loss, &refs).expect("autodiff"))
    };
    build_phase(&Vsgd::new(), Phase::Step, &b, &params, &mut grads).expect("vsgd step");
    b.finish().unwrap()
}

fn report(what: &str, g: &Graph, out: &Graph, st: &RewriteStats) {
    println!(
        "== {what}\n{st}before: {:?}\nafter:  {:?}",
        histogram(g),
        histogram(out)
    );
}

/// `(op, count before, count after)` for the ops a rewrite is expected to change.
fn assert_counts(g: &Graph, out: &Graph, expected: &[(&str, usize, usize)]) {
    for &(op, before, after) in expected {
        assert_eq!(
            (count_op(g, op), count_op(out, op)),
            (before, after),
            "`{op}` before/after\nbefore: {:?}\nafter:  {:?}",
            histogram(g),
            histogram(out)
        );
    }
}

/// The MLP 12-16-16-5 (batch 6) forward with cross-entropy, and per parameter a
/// hand-written Adam update with literal constants: `m*0.9 + g*(1 - 0.9)`, `g^2`,
/// divisions by `1 - b1` / `1 - b2`, `* 1.0` and `+ 0.0`.
#[test]
fn mlp_forward_with_adam_like_update() {
    let g = mlp_adam_graph(12, 16, 5, 6);
    let (out, st) = rewrite_checked(&g, &options());
    report("MLP forward + Adam-like update", &g, &out, &st);
    assert_eq!((st.ops_before, st.ops_after), (192, 119), "{st}");
    assert_counts(
        &g,
        &out,
        &[
            // g^2 -> g*g (6 params).
            ("pow", 6, 0),
            // m/(1-b1) and v/(1-b2) become multiplications; step/(sqrt(v)+eps) stays.
            ("div", 18, 6),
            // Broadcast constants fold into constant tensors; 10 expands remain
            // (3 biases, the scalar t for 6 params, the log-softmax max and lse).
            ("expand", 71, 10),
            // +12 from the divisions by constants, -6 for `* 1.0`, +6 for g*g, and per
            // param the constants of `m2 * 10 * t * 0.001` merge (`* 0.01`): -6.
            ("mul", 43, 49),
            // `(p - step) + 0.0` stays: p - step may be -0, and -0 + 0 = +0.
            ("add", 27, 27),
        ],
    );
}

/// The same MLP's forward and backward from autodiff: the loss seed `-1 * (1/6)`
/// folds, its chain of reshape/expand collapses into one constant, duplicated
/// `0.0` broadcasts and `expand(max)` merge, and `sum(-x)` becomes `0 - sum(x)` on the
/// reduced tensor.
#[test]
fn mlp_forward_and_backward() {
    let g = mlp_forward_backward(12, 16, 5, 6);
    let (out, st) = rewrite_checked(&g, &options());
    report("MLP forward + backward", &g, &out, &st);
    assert_eq!((st.ops_before, st.ops_after), (72, 60), "{st}");
    assert_counts(
        &g,
        &out,
        &[
            ("neg", 4, 1),
            ("expand", 15, 7),
            ("reshape", 5, 3),
            ("mul", 5, 4),
            ("sub", 2, 4),
            ("matmul", 8, 8),
            ("sum", 8, 8),
        ],
    );
}

/// The whole MLP + VSGD training step: forward, backward, and the VSGD update of all
/// six parameters (runtime-scalar hyperparameters, so little folds there). Expected:
/// the backward's savings, expands of the same scalar to the same shape merged, and
/// the two divisions by `s_g + s_h` of each parameter sharing one reciprocal.
#[test]
fn mlp_vsgd_training_step() {
    let g = mlp_vsgd_step(12, 16, 5, 6);
    let (out, st) = rewrite_checked(&g, &options());
    report("MLP + VSGD step", &g, &out, &st);
    assert!(
        st.total_time > Duration::ZERO && st.phases.len() == 3,
        "the rewrite time is reported"
    );
    assert_eq!((st.ops_before, st.ops_after), (348, 324), "{st}");
    assert_eq!(st.shared_divisors, 12, "{st}");
    assert!(st.cost_after < st.cost_before);
    assert_counts(
        &g,
        &out,
        &[
            ("div", 20, 8),
            ("recip", 0, 6),
            ("expand", 93, 67),
            ("neg", 4, 1),
            ("sqrt", 6, 6),
        ],
    );
}

/// The DESIGN.md benchmark step at full size (MLP 784-256-256-10, batch 128, VSGD):
/// same structure, so the same counts; no interpreter run at this size. Run with
/// `--nocapture` to see the rewrite time (asserted nowhere: timing is a benchmark).
#[test]
fn mlp_vsgd_training_step_full_size() {
    let g = mlp_vsgd_step(784, 256, 10, 128);
    // Generous limits: the counts must not depend on how busy the machine is.
    let (out, st) = rewrite(&g, &options());
    report("MLP 784-256-256-10 + VSGD step (batch 128)", &g, &out, &st);
    assert!(st.fallback.is_none(), "{st}");
    assert_eq!((st.ops_before, st.ops_after), (348, 324), "{st}");
}

/// A ~500-op step (MLP 784-256x4-10, batch 128, VSGD): the size the rewriter's
/// limits are sized for. Run with `--nocapture` for the time.
#[test]
fn five_hundred_op_step() {
    let g = deep_mlp_vsgd_step(784, &[256; 4], 10, 128);
    let (out, st) = rewrite(&g, &options());
    report("MLP 784-256x4-10 + VSGD step (batch 128)", &g, &out, &st);
    assert!(st.fallback.is_none(), "{st}");
    assert!(st.phases.iter().all(|p| p.stop_reason == StopReason::Saturated), "{st}");
    assert_eq!((st.ops_before, st.ops_after), (560, 484), "{st}");
    assert_eq!(st.shared_divisors, 20, "{st}");
}
