//! Training-step assembly (`kiln::step`): golden vectors through model + autodiff +
//! optimizer in one graph (the gradient comes from autodiff at the optimizer's
//! evaluation points), run by the interpreter and compiled fused and unfused; smoke tests: every optimizer lowers the loss of logistic
//! regression and of a small MLP on synthetic data, run by the reference interpreter, and
//! on the digits data set, run by the compiled pipeline.

// The golden literals are copied verbatim from the research notes.
#![allow(clippy::excessive_precision)]

use std::collections::HashMap;

use kiln::compiled_executor::CompiledExecutor;
use kiln::step::{bind_scalars, build_step, StepGraphs, LOSS};
use kiln_ir::init::initial_bindings;
use kiln_ir::interp::{apply_updates, evaluate};
use kiln_ir::{Bindings, DType, Graph, GraphBuilder, Init, Tensor, Value};
use kiln_models::nets::{LogReg, Mlp, Model};
use kiln_models::optim::{by_name, noise_input_name, Executor, Interpreter, NoiseSource, Optimizer, Phase, OPTIMIZERS};
use kiln_runtime::compile::CompileOptions;

fn opt(name: &str, hyper: &[(&str, f64)]) -> Box<dyn Optimizer> {
    let mut o = by_name(name).unwrap();
    for (k, v) in hyper {
        o.set(k, *v).unwrap();
    }
    o
}

fn vec3(x: &[f64]) -> Value {
    Value::new([x.len()], DType::F32, x.to_vec()).unwrap()
}

/// Initial bindings of every param and state of all graphs.
fn init(graphs: &StepGraphs) -> Bindings {
    let mut b = initial_bindings(&graphs.step, 1);
    if let Some(r) = &graphs.refresh {
        for (k, v) in initial_bindings(r, 1) {
            b.entry(k).or_insert(v);
        }
    }
    b
}

fn run(graph: &Graph, bindings: &mut Bindings) -> f64 {
    let eval = evaluate(graph, bindings).unwrap();
    apply_updates(graph, &eval, bindings);
    eval.output(graph, LOSS).map_or(f64::NAN, |v| v.data[0])
}

/// Where the autodiff goldens run, with the absolute tolerance of f32 arithmetic: the
/// f64 interpreter (0: the test's own tolerance), and the compiled pipeline (f32), fused
/// and unfused.
fn executors() -> Vec<(&'static str, Box<dyn Executor>, f64)> {
    let compiled = |fuse: bool| {
        Box::new(CompiledExecutor::new(CompileOptions {
            fuse,
            ..CompileOptions::default()
        })) as Box<dyn Executor>
    };
    vec![
        ("interpreter", Box::new(Interpreter), 0.0),
        ("fused", compiled(true), 2e-6),
        ("unfused", compiled(false), 2e-6),
    ]
}

// ------------------------------------------------ golden vectors through autodiff

/// ½ Σ a (w − c)², the toy loss of ivon_poco.md §6, with a and c as data inputs.
fn quadratic(b: &GraphBuilder) -> Tensor {
    let w = b.param("w", [3], Init::Zeros);
    let a = b.input("a", [3], DType::F32);
    let c = b.input("c", [3], DType::F32);
    (&a * &(&w - &c).square()).sum_all() * 0.5
}

#[test]
fn ivon_case_a_through_autodiff() {
    for (mode, mut exec, f32_tol) in executors() {
        let mut o = opt("ivon", &[("lr", 0.1), ("ess", 100.0)]);
        o.set_noise_source(NoiseSource::Input).unwrap();
        let graphs = build_step(o.as_ref(), &quadratic).unwrap();
        let mut bind = init(&graphs);
        bind.insert("w".into(), vec3(&[0.1, -0.2, 0.3]));
        bind.insert("a".into(), vec3(&[1.0, 2.0, 0.5]));
        bind.insert("c".into(), vec3(&[0.5, -1.0, 2.0]));
        let z = [[0.5, -1.0, 1.5], [-0.3, 0.8, -1.2], [1.1, 0.2, -0.7]];
        for (t, zt) in z.iter().enumerate() {
            bind.insert(noise_input_name("w", ""), vec3(zt));
            bind_scalars(&graphs.step, &o.scalars(t as u64 + 1).unwrap(), &mut bind).unwrap();
            exec.run(&graphs.step, &mut bind).unwrap();
        }
        let want = [0.20397866021181169, -0.61476626375689236, 0.54186817702816892];
        for (i, (got, want)) in bind["w"].data.iter().zip(want).enumerate() {
            assert!((got - want).abs() < f32_tol.max(1e-13), "{mode} m3[{i}] = {got}");
        }
    }
}

#[test]
fn vsgd_golden_through_autodiff() {
    // vsgd.md §6.1: the loss Σ w·g (g a data input) has exactly the table's gradients.
    let linear = |b: &GraphBuilder| {
        let w = b.param("w", [3], Init::Zeros);
        let g = b.input("g", [3], DType::F32);
        (&w * &g).sum_all()
    };
    let grads = [[0.5, -1.0, 0.01], [0.4, 0.5, -0.02], [-0.1, -0.8, 0.03]];
    let theta = [
        [0.924273989, -0.408174280, 0.247681699],
        [0.862145510, -0.341320916, 0.306635251],
        [0.800642645, -0.272617890, 0.248786647],
    ];
    for (mode, mut exec, f32_tol) in executors() {
        let o = opt("vsgd", &[]);
        let graphs = build_step(o.as_ref(), &linear).unwrap();
        let mut bind = init(&graphs);
        bind.insert("w".into(), vec3(&[1.0, -0.5, 0.25]));
        for (t, g) in grads.iter().enumerate() {
            bind.insert("g".into(), vec3(g));
            bind_scalars(&graphs.step, &o.scalars(t as u64 + 1).unwrap(), &mut bind).unwrap();
            exec.run(&graphs.step, &mut bind).unwrap();
            for (i, (got, want)) in bind["w"].data.iter().zip(theta[t]).enumerate() {
                // The table has 9 digits.
                assert!(
                    (got - want).abs() < f32_tol.max(2e-9),
                    "{mode} step {} theta[{i}] = {got}",
                    t + 1
                );
            }
        }
    }
}

#[test]
fn svrg_golden_through_autodiff() {
    for (mode, mut exec, f32_tol) in executors() {
        let sa = [[1.0, 2.0, 0.5], [0.5, 1.0, 2.0], [2.0, 0.5, 1.0], [1.0, 1.0, 1.0]];
        let sc = [[0.5, -1.0, 2.0], [-1.0, 0.0, 1.0], [0.0, 1.0, -1.0], [1.0, 0.5, 0.0]];
        let o = opt("svrg", &[("lr", 0.2), ("alpha", 1.0)]);
        let graphs = build_step(o.as_ref(), &quadratic).unwrap();
        let refresh = graphs.refresh.as_ref().unwrap();
        assert!(graphs.step.output("loss@snapshot").is_some());
        let mut bind = init(&graphs);
        bind.insert("w".into(), vec3(&[0.1, -0.2, 0.3]));
        let mut t = 0;
        for order in [[2usize, 0], [3, 1]] {
            for j in 0..4 {
                bind.insert("a".into(), vec3(&sa[j]));
                bind.insert("c".into(), vec3(&sc[j]));
                bind_scalars(refresh, &o.refresh_scalars(0, j == 0, 0.25).unwrap(), &mut bind).unwrap();
                exec.run(refresh, &mut bind).unwrap();
            }
            for i in order {
                t += 1;
                bind.insert("a".into(), vec3(&sa[i]));
                bind.insert("c".into(), vec3(&sc[i]));
                bind_scalars(&graphs.step, &o.scalars(t).unwrap(), &mut bind).unwrap();
                exec.run(&graphs.step, &mut bind).unwrap();
            }
        }
        let want = [0.18058875, -0.21376, 0.39152];
        for (i, (got, want)) in bind["w"].data.iter().zip(want).enumerate() {
            assert!((got - want).abs() < f32_tol.max(1e-13), "{mode} theta[{i}] = {got}");
        }
    }
}

#[test]
fn ivon_poco_golden_through_autodiff() {
    for (mode, mut exec, f32_tol) in executors() {
        let sa = [[1.0, 2.0, 0.5], [0.5, 1.0, 2.0], [2.0, 0.5, 1.0], [1.0, 1.0, 1.0]];
        let sc = [[0.5, -1.0, 2.0], [-1.0, 0.0, 1.0], [0.0, 1.0, -1.0], [1.0, 0.5, 0.0]];
        let mut o = opt(
            "ivon-poco",
            &[("lr", 0.1), ("ess", 4.0), ("beta2", 0.99), ("weight_decay", 0.01)],
        );
        o.set_noise_source(NoiseSource::Input).unwrap();
        let graphs = build_step(o.as_ref(), &quadratic).unwrap();
        let refresh = graphs.refresh.as_ref().unwrap();
        let mut bind = init(&graphs);
        bind.insert("w".into(), vec3(&[0.1, -0.2, 0.3]));
        bind.insert("w.ivon_poco.hess".into(), vec3(&[1.0, 1.5, 0.8]));
        bind.insert(noise_input_name("w", ""), vec3(&[0.3, -0.6, 0.9]));
        for j in 0..4 {
            bind.insert("a".into(), vec3(&sa[j]));
            bind.insert("c".into(), vec3(&sc[j]));
            bind_scalars(refresh, &o.refresh_scalars(j as u64, j == 0, 0.25).unwrap(), &mut bind).unwrap();
            exec.run(refresh, &mut bind).unwrap();
        }
        bind.insert("w".into(), vec3(&[0.2, -0.1, 0.5]));
        bind.insert("w.ivon_poco.hess".into(), vec3(&[1.2, 1.4, 0.9]));
        bind.insert("w.ivon_poco.momentum".into(), vec3(&[0.05, -0.02, 0.1]));
        bind.insert("a".into(), vec3(&sa[2]));
        bind.insert("c".into(), vec3(&sc[2]));
        bind.insert(noise_input_name("w", ""), vec3(&[0.5, -1.0, 1.5]));
        bind.insert(noise_input_name("w", "anchor"), vec3(&[-0.3, 0.8, -1.2]));
        bind_scalars(&graphs.step, &o.scalars(5).unwrap(), &mut bind).unwrap();
        exec.run(&graphs.step, &mut bind).unwrap();
        let want = [0.17062513042997338, -0.089033320828760046, 0.41586457357283274];
        for (i, (got, want)) in bind["w"].data.iter().zip(want).enumerate() {
            assert!((got - want).abs() < f32_tol.max(1e-10), "{mode} m_new[{i}] = {got}");
        }
    }
}

// --------------------------------------------------------------- smoke tests

const FEATURES: usize = 4;
const CLASSES: usize = 3;
const N: usize = 48;

/// Three Gaussian blobs in 4-D, 16 examples each, deterministic.
fn blobs() -> (Vec<f64>, Vec<f64>) {
    let mut state: u64 = 0x1234_5678;
    let mut normal = || {
        let mut u = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let (u1, u2) = (u(), u());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    };
    let centers = [[1.5, 0.0, -1.0, 0.5], [-1.0, 1.5, 0.5, -0.5], [0.0, -1.5, 1.0, 1.0]];
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..N {
        let c = i % CLASSES;
        for f in 0..FEATURES {
            x.push(centers[c][f] + 0.6 * normal());
        }
        y.push(c as f64);
    }
    (x, y)
}

fn classifier(model: &dyn Model, batch: usize) -> impl Fn(&GraphBuilder) -> Tensor + '_ {
    move |b: &GraphBuilder| {
        let x = b.input("x", [batch, FEATURES], DType::F32);
        let y = b.input("y", [batch], DType::I32);
        model.forward(b, &x).cross_entropy(&y)
    }
}

fn set_batch(bind: &mut Bindings, data: &(Vec<f64>, Vec<f64>), rows: std::ops::Range<usize>) {
    let n = rows.len();
    let x = data.0[rows.start * FEATURES..rows.end * FEATURES].to_vec();
    bind.insert("x".into(), Value::new([n, FEATURES], DType::F32, x).unwrap());
    bind.insert("y".into(), Value::new([n], DType::I32, data.1[rows].to_vec()).unwrap());
}

/// The full-data loss at the current parameters (IVON: at the mean).
fn full_loss(model: &dyn Model, bind: &Bindings, data: &(Vec<f64>, Vec<f64>)) -> f64 {
    let b = GraphBuilder::new();
    let l = classifier(model, N)(&b);
    b.output(LOSS, &l);
    let g = b.finish().unwrap();
    let mut eb = bind.clone();
    set_batch(&mut eb, data, 0..N);
    evaluate(&g, &eb).unwrap().output(&g, LOSS).unwrap().data[0]
}

fn smoke_hyper(name: &str) -> Vec<(&'static str, f64)> {
    match name {
        "sgd" => vec![("lr", 0.3), ("momentum", 0.9)],
        "adam" | "adamw" => vec![("lr", 0.05)],
        "vsgd" | "constant-vsgd" => vec![("lr", 0.05)],
        "ivon" => vec![("lr", 0.3), ("ess", 1000.0), ("beta2", 0.999), ("mc_samples", 2.0)],
        "svrg" => vec![("lr", 0.3)],
        "ivon-poco" => vec![("lr", 0.3), ("ess", 1000.0), ("beta2", 0.999), ("alpha", 0.5)],
        _ => unreachable!(),
    }
}

/// Train `model` with every optimizer for 40 steps and require the full-data loss to
/// drop below `ratio` times its initial value. SVRG and IVON-PoCo take mini-batches of
/// 12 with a full refresh (4 micro-batches) every 4 steps; the others full batches.
fn smoke(model: &dyn Model, ratio: f64) {
    let data = blobs();
    for name in OPTIMIZERS {
        let o = opt(name, &smoke_hyper(name));
        let minibatch = o.phases().contains(&Phase::Refresh);
        let batch = if minibatch { 12 } else { N };
        let graphs = build_step(o.as_ref(), &classifier(model, batch)).unwrap();
        let mut bind = init(&graphs);
        let before = full_loss(model, &bind, &data);
        for t in 1..=40u64 {
            if let Some(refresh) = &graphs.refresh {
                if (t - 1) % 4 == 0 {
                    for j in 0..4 {
                        set_batch(&mut bind, &data, j * 12..(j + 1) * 12);
                        let s = o.refresh_scalars(t + j as u64, j == 0, 0.25).unwrap();
                        bind_scalars(refresh, &s, &mut bind).unwrap();
                        run(refresh, &mut bind);
                    }
                }
            }
            let rows = if minibatch {
                let j = (t as usize - 1) % 4;
                j * 12..(j + 1) * 12
            } else {
                0..N
            };
            set_batch(&mut bind, &data, rows);
            bind_scalars(&graphs.step, &o.scalars(t).unwrap(), &mut bind).unwrap();
            let loss = run(&graphs.step, &mut bind);
            assert!(loss.is_finite(), "{name}: loss {loss} at step {t}");
        }
        let after = full_loss(model, &bind, &data);
        eprintln!(
            "{name:>14} on {}: full-data loss {before:.4} -> {after:.4}",
            model.name()
        );
        assert!(
            after < ratio * before,
            "{name} on {}: loss {before:.4} -> {after:.4}, expected below {:.4}",
            model.name(),
            ratio * before
        );
    }
}

#[test]
fn every_optimizer_trains_logistic_regression() {
    smoke(
        &LogReg {
            features: FEATURES,
            classes: CLASSES,
        },
        0.25,
    );
}

#[test]
fn every_optimizer_trains_a_small_mlp() {
    smoke(
        &Mlp {
            features: FEATURES,
            hidden: vec![8],
            classes: CLASSES,
        },
        0.25,
    );
}

#[test]
fn ivon_loss_output_is_at_the_sampled_weights() {
    // With a huge posterior variance the sampled loss differs from the loss at the mean.
    let model = LogReg {
        features: FEATURES,
        classes: CLASSES,
    };
    let o = opt("ivon", &[("lr", 0.1), ("ess", 1e-2), ("seed", 3.0)]);
    let graphs = build_step(o.as_ref(), &classifier(&model, N)).unwrap();
    let data = blobs();
    let mut bind = init(&graphs);
    let at_mean = full_loss(&model, &bind, &data);
    set_batch(&mut bind, &data, 0..N);
    bind_scalars(&graphs.step, &o.scalars(1).unwrap(), &mut bind).unwrap();
    let sampled = run(&graphs.step, &mut bind);
    assert!((sampled - at_mean).abs() > 1e-3, "sampled {sampled} vs mean {at_mean}");
    let unbound = bind_scalars(&graphs.step, &[], &mut HashMap::new());
    assert!(unbound.unwrap_err().to_string().contains("optim."));
}

// ------------------------------------------------- smoke tests on the digits data set

/// Every optimizer lowers the full training-set loss of `model` on digits (8x8 images,
/// 10 classes) below `ratio` times its initial value in 60 compiled steps of batch 64
/// (the real pipeline, fused). SVRG and IVON-PoCo refresh over a mega-batch of 4
/// micro-batches every 15 steps.
fn digits_smoke(model: &dyn Model, ratio: f64) {
    use kiln_runtime::data::Dataset;

    const B: usize = 64;
    let train = Dataset::load("digits", None).unwrap().train;
    let (d, n) = (train.feature_dim(), train.len());
    let x_all: Vec<f64> = train.features().iter().map(|&v| f64::from(v)).collect();
    let y_all: Vec<f64> = train.labels().iter().map(|&v| f64::from(v)).collect();
    let loss_fn = |rows: usize| {
        move |b: &GraphBuilder| {
            let x = b.input("x", [rows, d], DType::F32);
            let y = b.input("y", [rows], DType::I32);
            model.forward(b, &x).cross_entropy(&y)
        }
    };
    let batch = |bind: &mut Bindings, k: usize| {
        let rows: Vec<usize> = (0..B).map(|i| (k * B + i) % n).collect();
        let x: Vec<f64> = rows.iter().flat_map(|&r| x_all[r * d..(r + 1) * d].to_vec()).collect();
        let y: Vec<f64> = rows.iter().map(|&r| y_all[r]).collect();
        bind.insert("x".into(), Value::new([B, d], DType::F32, x).unwrap());
        bind.insert("y".into(), Value::new([B], DType::I32, y).unwrap());
    };
    let full_loss = |bind: &Bindings| {
        let b = GraphBuilder::new();
        let l = loss_fn(n)(&b);
        b.output(LOSS, &l);
        let g = b.finish().unwrap();
        let mut eb = bind.clone();
        eb.insert("x".into(), Value::new([n, d], DType::F32, x_all.clone()).unwrap());
        eb.insert("y".into(), Value::new([n], DType::I32, y_all.clone()).unwrap());
        evaluate(&g, &eb).unwrap().output(&g, LOSS).unwrap().data[0]
    };
    let mut exec = CompiledExecutor::new(CompileOptions::default());
    for name in OPTIMIZERS {
        let hyper: Vec<(&str, f64)> = match *name {
            "sgd" => vec![("lr", 0.1), ("momentum", 0.9)],
            "adam" | "adamw" => vec![("lr", 0.01)],
            "vsgd" | "constant-vsgd" => vec![("lr", 0.01)],
            "ivon" => vec![("lr", 0.5), ("ess", n as f64), ("hess_init", 0.2), ("beta2", 0.999)],
            "ivon-poco" => vec![
                ("lr", 0.3),
                ("ess", n as f64),
                ("hess_init", 0.2),
                ("beta2", 0.999),
                ("alpha", 0.5),
            ],
            "svrg" => vec![("lr", 0.5)],
            _ => unreachable!(),
        };
        let o = opt(name, &hyper);
        let graphs = build_step(o.as_ref(), &loss_fn(B)).unwrap();
        let mut bind = init(&graphs);
        let before = full_loss(&bind);
        let mut k = 0;
        for t in 1..=60u64 {
            if let Some(refresh) = &graphs.refresh {
                if (t - 1) % 15 == 0 {
                    for j in 0..4 {
                        batch(&mut bind, 1000 + j);
                        bind_scalars(
                            refresh,
                            &o.refresh_scalars(t + j as u64, j == 0, 0.25).unwrap(),
                            &mut bind,
                        )
                        .unwrap();
                        exec.run(refresh, &mut bind).unwrap();
                    }
                }
            }
            batch(&mut bind, k);
            k += 1;
            bind_scalars(&graphs.step, &o.scalars(t).unwrap(), &mut bind).unwrap();
            exec.run(&graphs.step, &mut bind).unwrap();
        }
        let after = full_loss(&bind);
        eprintln!(
            "{name:>14} on digits, {}: full-data loss {before:.4} -> {after:.4}",
            model.name()
        );
        assert!(
            after < ratio * before,
            "{name} on digits, {}: loss {before:.4} -> {after:.4}, expected below {:.4}",
            model.name(),
            ratio * before
        );
    }
}

#[test]
fn every_optimizer_trains_logistic_regression_on_digits() {
    digits_smoke(
        &LogReg {
            features: 64,
            classes: 10,
        },
        0.5,
    );
}

#[test]
fn every_optimizer_trains_a_small_mlp_on_digits() {
    digits_smoke(
        &Mlp {
            features: 64,
            hidden: vec![32],
            classes: 10,
        },
        0.5,
    );
}
