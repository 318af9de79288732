//! The optimizers through the COMPILED pipeline (rewrite -> lowering -> Cranelift JIT),
//! fused and unfused, with the reference interpreter as the oracle:
//! - every golden vector of vsgd.md §6 and ivon_poco.md §6 through `optim::replay` (the
//!   library function `kiln optim replay` calls) with the `CompiledExecutor` the CLI uses;
//! - 100-step trajectories on random gradients for every optimizer: fused == unfused ==
//!   interpreter (IVON and IVON-PoCo with their Philox noise regenerated in the update);
//! - a learning-rate schedule never recompiles (compile count asserted);
//! - the kernel counts: the update of all parameters is ONE kernel for every optimizer
//!   (gradients as graph inputs), and the counts of a whole MLP training step.

#![allow(clippy::excessive_precision)]

#[path = "../models/tests/optim_util/mod.rs"]
mod optim_util;

use kiln::compiled_executor::CompiledExecutor;
use kiln::step::build_step;
use kiln_ir::{Bindings, DType, Graph, GraphBuilder, SourceKind, Value};
use kiln_models::nets::{Mlp, Model};
use kiln_models::optim::{
    by_name, replay, Executor, Interpreter, NoiseSource, Optimizer, Phase, Replayer, Trace, OPTIMIZERS,
};
use kiln_runtime::compile::{CompileCache, CompileOptions};
use optim_util::reference::{Ivon as RefIvon, Sgd as RefSgd, Svrg as RefSvrg};
use optim_util::{assert_close, Rng};
use serde_json::json;

fn compiled(fuse: bool) -> CompiledExecutor {
    CompiledExecutor::new(CompileOptions {
        fuse,
        ..CompileOptions::default()
    })
}

/// The parameters after each step, by name.
type Steps = Vec<std::collections::BTreeMap<String, Vec<f64>>>;

/// Replay `trace` fused and unfused; the parameters after each step, per mode.
fn replay_compiled(text: &str) -> Vec<(bool, Steps)> {
    let trace = Trace::parse(text).unwrap();
    [true, false]
        .into_iter()
        .map(|fuse| (fuse, replay(&trace, &[], &mut compiled(fuse)).unwrap()))
        .collect()
}

// ------------------------------------------------------------------- goldens

const VSGD_THETA0: [f64; 3] = [1.0, -0.5, 0.25];
const VSGD_GRADS: [[f64; 3]; 3] = [[0.5, -1.0, 0.01], [0.4, 0.5, -0.02], [-0.1, -0.8, 0.03]];

#[test]
fn vsgd_tables_compiled() {
    // vsgd.md §6.1 (f64 math) and the weight-decay table; fp32 with the step-1
    // constants computed in f64 is within 1e-6 of §6.1 (§6.3).
    let tables = [
        (
            0.0,
            [
                [0.924273989, -0.408174280, 0.247681699],
                [0.862145510, -0.341320916, 0.306635251],
                [0.800642645, -0.272617890, 0.248786647],
            ],
        ),
        (
            0.1,
            [
                [0.914273989, -0.403174280, 0.245181699],
                [0.843002770, -0.332289173, 0.301683434],
                [0.773069878, -0.260263256, 0.240817996],
            ],
        ),
    ];
    for (wd, theta) in tables {
        for name in ["vsgd", "constant-vsgd"] {
            let text = json!({
                "optimizer": name,
                "hyper": {"weight_decay": wd},
                "params": {"w": {"shape": [3], "data": VSGD_THETA0}},
                "grads": VSGD_GRADS.iter().map(|g| json!({"w": g})).collect::<Vec<_>>(),
            })
            .to_string();
            for (fuse, steps) in replay_compiled(&text) {
                // Constant VSGD shares VSGD's first step only (its precisions are frozen).
                let n = if name == "vsgd" { 3 } else { 1 };
                for t in 0..n {
                    let what = format!("{name} wd={wd} fused={fuse} theta step {}", t + 1);
                    assert_close(&what, &steps[t]["w"], &theta[t], 1e-6, 0.0);
                }
            }
        }
    }
}

const A: [f64; 3] = [1.0, 2.0, 0.5];
const C: [f64; 3] = [0.5, -1.0, 2.0];
const M0: [f64; 3] = [0.1, -0.2, 0.3];
const Z: [[f64; 3]; 3] = [[0.5, -1.0, 1.5], [-0.3, 0.8, -1.2], [1.1, 0.2, -0.7]];

fn grad(theta: &[f64], a: &[f64], c: &[f64]) -> Vec<f64> {
    (0..theta.len()).map(|i| a[i] * (theta[i] - c[i])).collect()
}

/// An IVON trace whose gradients are the toy loss's at the sampled weights (computed by
/// the independent reference), `samples` draws per step from `zs`.
fn ivon_trace(hyper: &[(&str, f64)], zs: &[Vec<[f64; 3]>]) -> String {
    let h = |k: &str| hyper.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let mut reference = RefIvon::new(
        3,
        h("lr").unwrap(),
        h("ess").unwrap(),
        h("hess_init").unwrap_or(1.0),
        0.9,
        h("beta2").unwrap_or(0.99999),
        h("weight_decay").unwrap_or(1e-4),
        h("clip_radius").unwrap_or(f64::INFINITY),
    );
    let mut m = M0.to_vec();
    let (mut grads, mut noise) = (Vec::new(), Vec::new());
    for step in zs {
        let gs: Vec<Vec<f64>> = step.iter().map(|z| grad(&reference.sample(&m, z), &A, &C)).collect();
        let key = |k: usize| {
            if k == 0 {
                "w".to_string()
            } else {
                format!("w@sample{k}")
            }
        };
        grads.push(serde_json::Value::Object(
            gs.iter().enumerate().map(|(k, g)| (key(k), json!(g))).collect(),
        ));
        noise.push(serde_json::Value::Object(
            step.iter().enumerate().map(|(k, z)| (key(k), json!(z))).collect(),
        ));
        let zv: Vec<Vec<f64>> = step.iter().map(|z| z.to_vec()).collect();
        reference.step(&mut m, &gs, &zv);
    }
    let hyper_json: serde_json::Map<String, serde_json::Value> =
        hyper.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    json!({
        "optimizer": "ivon",
        "hyper": hyper_json,
        "params": {"w": {"shape": [3], "data": M0}},
        "grads": grads,
        "noise": noise,
    })
    .to_string()
}

#[test]
fn ivon_cases_compiled() {
    // ivon_poco.md §6.1: fp32 differs from f64 by <= 1.4e-7 on these values.
    let one = |z: &[f64; 3]| vec![*z];
    let case_a = [("lr", 0.1), ("ess", 100.0)];
    let case_b = [
        ("lr", 0.5),
        ("ess", 10.0),
        ("hess_init", 0.5),
        ("beta2", 0.9),
        ("weight_decay", 0.1),
        ("clip_radius", 0.3),
    ];
    let case_c = [("lr", 0.1), ("ess", 100.0), ("mc_samples", 2.0)];
    // (hyperparameters, draws per step, the step of the table row, m after it)
    type Case<'a> = (&'a [(&'a str, f64)], Vec<Vec<[f64; 3]>>, usize, [f64; 3]);
    let cases: [Case; 3] = [
        (
            &case_a,
            Z.iter().map(one).collect(),
            2,
            [0.20397866021181169, -0.61476626375689236, 0.54186817702816892],
        ),
        (
            &case_b,
            Z.iter().map(one).collect(),
            2,
            [0.32399948906393711, -0.46999999999999997, 0.56999999999999995],
        ),
        (
            &case_c,
            vec![vec![Z[0], Z[1]], vec![Z[1], Z[2]]],
            1,
            [0.17436777089819597, -0.50567250687680532, 0.46916699427851771],
        ),
    ];
    for (hyper, zs, last, want) in cases {
        for (fuse, steps) in replay_compiled(&ivon_trace(hyper, &zs)) {
            assert_close(
                &format!("{hyper:?} fused={fuse} m"),
                &steps[last]["w"],
                &want,
                1e-6,
                0.1,
            );
        }
    }
}

const SA: [[f64; 3]; 4] = [[1.0, 2.0, 0.5], [0.5, 1.0, 2.0], [2.0, 0.5, 1.0], [1.0, 1.0, 1.0]];
const SC: [[f64; 3]; 4] = [[0.5, -1.0, 2.0], [-1.0, 0.0, 1.0], [0.0, 1.0, -1.0], [1.0, 0.5, 0.0]];

#[test]
fn svrg_compiled() {
    // ivon_poco.md §6.2, α = 1 and α = 0.5.
    for (alpha, want) in [
        (1.0, [0.18058875, -0.21376, 0.39152]),
        (0.5, [0.1836296875, -0.20754, 0.44737]),
    ] {
        let mut reference = RefSvrg {
            sgd: RefSgd::new(0.2, 0.0, 0.0, 0.0, false),
            alpha,
            snapshot: vec![],
            mu: vec![],
        };
        let mut theta = M0.to_vec();
        let (mut refresh, mut grads) = (Vec::new(), Vec::new());
        for (outer, order) in [[2usize, 0], [3, 1]].iter().enumerate() {
            reference.begin_refresh(&theta);
            let batches: Vec<_> = (0..4)
                .map(|j| {
                    let g = grad(&reference.snapshot, &SA[j], &SC[j]);
                    reference.accumulate(0.25, &g);
                    json!({"grads": {"w": g}})
                })
                .collect();
            refresh.push(json!({"before_step": 2 * outer, "batches": batches}));
            for &i in order {
                let g_in = grad(&theta, &SA[i], &SC[i]);
                let g_out = grad(&reference.snapshot, &SA[i], &SC[i]);
                grads.push(json!({"w": g_in, "w@snapshot": g_out}));
                reference.step(&mut theta, &g_in, &g_out);
            }
        }
        let text = json!({
            "optimizer": "svrg",
            "hyper": {"lr": 0.2, "alpha": alpha},
            "params": {"w": {"shape": [3], "data": M0}},
            "grads": grads,
            "refresh": refresh,
        })
        .to_string();
        for (fuse, steps) in replay_compiled(&text) {
            assert_close(
                &format!("svrg α={alpha} fused={fuse}"),
                &steps[3]["w"],
                &want,
                1e-6,
                0.1,
            );
        }
    }
}

#[test]
fn ivon_poco_inner_step_compiled() {
    // ivon_poco.md §6.3: anchor statistics and inner state given, t = 5; all three rows.
    let t = |d: &[f64]| json!({"shape": [3], "data": d});
    let g_in = [0.854545454545, -0.760537980267, 2.28621362754];
    let g_out = [-0.098511157063, -0.437242308246, 0.633333333333];
    for (alpha, prox, want) in [
        (
            1.0,
            true,
            [0.17062513042997338, -0.089033320828760046, 0.41586457357283274],
        ),
        (
            1.0,
            false,
            [0.17054122261937282, -0.08691040013780843, 0.42591132120650832],
        ),
        (
            0.5,
            true,
            [0.17190515336159296, -0.086290561372879243, 0.41706996118187495],
        ),
    ] {
        let text = json!({
            "optimizer": "ivon-poco",
            "hyper": {"lr": 0.1, "ess": 4, "beta2": 0.99, "weight_decay": 0.01, "alpha": alpha, "prox": prox},
            "params": {"w": t(&[0.2, -0.1, 0.5])},
            "state": {
                "w.ivon_poco.hess": t(&[1.2, 1.4, 0.9]), "w.ivon_poco.momentum": t(&[0.05, -0.02, 0.1]),
                "w.ivon_poco.m_out": t(&[0.1, -0.2, 0.3]), "w.ivon_poco.h_out": t(&[1.0, 1.5, 0.8]),
                "w.ivon_poco.g_out": t(&[0.0304125258479, -0.249653604835, 0.4]),
                "w.ivon_poco.hbar_out": t(&[0.0183385261258, 0.368135382818, 0.648]),
            },
            "start_step": 5,
            "grads": [{"w": g_in, "w@anchor": g_out}],
            "noise": [{"w": [0.5, -1.0, 1.5], "w@anchor": [-0.3, 0.8, -1.2]}],
        })
        .to_string();
        for (fuse, steps) in replay_compiled(&text) {
            let what = format!("poco α={alpha} prox={prox} fused={fuse}");
            assert_close(&what, &steps[0]["w"], &want, 1e-6, 0.1);
        }
    }
}

// --------------------------------------------------------------- trajectories

const PARAMS: [(&str, &[usize]); 4] = [("w", &[3, 5]), ("v", &[783]), ("h", &[1]), ("b", &[17])];

fn make(name: &str) -> Box<dyn Optimizer> {
    let mut o = by_name(name).unwrap();
    let hyper: &[(&str, f64)] = match name {
        "sgd" => &[
            ("lr", 0.05),
            ("momentum", 0.9),
            ("nesterov", 1.0),
            ("weight_decay", 0.01),
        ],
        "adam" | "adamw" => &[("lr", 0.01), ("weight_decay", 0.01)],
        "vsgd" | "constant-vsgd" => &[("lr", 0.01), ("weight_decay", 0.01)],
        "ivon" => &[("lr", 0.05), ("ess", 50.0), ("mc_samples", 2.0)],
        "ivon-poco" => &[("lr", 0.05), ("ess", 50.0), ("alpha", 0.5)],
        "svrg" => &[("lr", 0.05), ("alpha", 0.7)],
        _ => unreachable!("{name}"),
    };
    for (k, v) in hyper {
        o.set(k, *v).unwrap();
    }
    o
}

fn random_inputs(rng: &mut Rng, needed: &[(String, kiln_ir::Shape)]) -> std::collections::HashMap<String, Value> {
    needed
        .iter()
        .map(|(n, s)| {
            let data: Vec<f64> = rng
                .normals(s.numel(), 1.0)
                .into_iter()
                .map(|x| x as f32 as f64)
                .collect();
            (n.clone(), Value::new(s.clone(), DType::F32, data).unwrap())
        })
        .collect()
}

#[test]
fn trajectories_fused_unfused_and_interpreter_agree_for_100_steps() {
    const STEPS: u64 = 100;
    for name in OPTIMIZERS {
        let mut rng = Rng(0x5eed ^ name.len() as u64);
        let params: Vec<(String, Value)> = PARAMS
            .iter()
            .map(|(n, s)| {
                let numel = s.iter().product();
                let data = rng.normals(numel, 0.5).into_iter().map(|x| x as f32 as f64).collect();
                (n.to_string(), Value::new(s.to_vec(), DType::F32, data).unwrap())
            })
            .collect();
        let (mut interp, mut fused, mut unfused) = (Interpreter, compiled(true), compiled(false));
        let mut runs = [
            Replayer::new(make(name), &params, &mut interp).unwrap(),
            Replayer::new(make(name), &params, &mut fused).unwrap(),
            Replayer::new(make(name), &params, &mut unfused).unwrap(),
        ];
        assert_eq!(
            runs[0].optimizer().noise_source().is_some(),
            matches!(*name, "ivon" | "ivon-poco")
        );
        let (step_inputs, refresh_inputs) = (runs[0].inputs(Phase::Step), runs[0].inputs(Phase::Refresh));
        assert!(
            step_inputs.iter().all(|(n, _)| n.starts_with("grad.")),
            "{name}: Philox noise"
        );
        let mut worst = 0.0f64;
        for t in 1..=STEPS {
            if !refresh_inputs.is_empty() && (t - 1) % 10 == 0 {
                for (j, w) in [0.4, 0.6].into_iter().enumerate() {
                    let inputs = random_inputs(&mut rng, &refresh_inputs);
                    for r in &mut runs {
                        r.refresh_batch(j == 0, w, &inputs).unwrap();
                    }
                }
            }
            let inputs = random_inputs(&mut rng, &step_inputs);
            for r in &mut runs {
                r.step(&inputs).unwrap();
            }
            for (p, _) in PARAMS {
                let want = &runs[0].value(p).unwrap().data;
                for (mode, r) in [("fused", &runs[1]), ("unfused", &runs[2])] {
                    let got = &r.value(p).unwrap().data;
                    // f32 against f64 over 100 steps: relative 2e-4 of max(|θ|, 0.1).
                    assert_close(&format!("{name} {mode} {p} step {t}"), got, want, 2e-4, 0.1);
                    for (g, w) in got.iter().zip(want) {
                        worst = worst.max((g - w).abs() / w.abs().max(0.1));
                    }
                }
            }
        }
        eprintln!("{name:>14}: worst relative difference to the interpreter over {STEPS} steps: {worst:.2e}");
    }
}

// ------------------------------------------------------------ compile counts

/// Like `CompiledExecutor`, over a private cache so the count is this test's alone.
fn cached_executor(cache: &CompileCache) -> impl FnMut(&Graph, &mut Bindings) -> Result<(), String> + '_ {
    move |graph: &Graph, bindings: &mut Bindings| {
        let mut exe = cache
            .compile(graph, &CompileOptions::default())
            .map_err(|e| e.to_string())?;
        for name in exe.persistent_names() {
            exe.set(&name, &bindings[&name]).map_err(|e| e.to_string())?;
        }
        let mut inputs = Bindings::new();
        for kind in [SourceKind::Input, SourceKind::Scalar] {
            for id in graph.sources_of(kind) {
                let name = graph.node(id).op.source_name().unwrap_or_default();
                inputs.insert(name.to_string(), bindings[name].clone());
            }
        }
        exe.run(&inputs).map_err(|e| e.to_string())?;
        for name in exe.persistent_names() {
            bindings.insert(name.clone(), exe.get(&name).map_err(|e| e.to_string())?);
        }
        Ok(())
    }
}

#[test]
fn an_lr_schedule_never_recompiles() {
    for name in OPTIMIZERS {
        let cache = CompileCache::new();
        let mut exec = cached_executor(&cache);
        let mut interp = Interpreter;
        let params = vec![("w".to_string(), Value::full(0.5, [4, 3], DType::F32))];
        let mut compiled_run = Replayer::new(make(name), &params, &mut exec).unwrap();
        let mut reference = Replayer::new(make(name), &params, &mut interp).unwrap();
        let phases = if compiled_run.graph(Phase::Refresh).is_some() {
            2
        } else {
            1
        };
        let mut rng = Rng(7);
        for t in 1..=12u64 {
            if phases == 2 && t % 6 == 1 {
                let inputs = random_inputs(&mut rng, &compiled_run.inputs(Phase::Refresh));
                compiled_run.refresh_batch(true, 1.0, &inputs).unwrap();
                reference.refresh_batch(true, 1.0, &inputs).unwrap();
            }
            let lr = 0.05 / t as f64;
            compiled_run.set_hyper("lr", lr).unwrap();
            reference.set_hyper("lr", lr).unwrap();
            let inputs = random_inputs(&mut rng, &compiled_run.inputs(Phase::Step));
            compiled_run.step(&inputs).unwrap();
            reference.step(&inputs).unwrap();
        }
        assert_eq!(
            cache.compiles(),
            phases,
            "{name}: one compile per graph, whatever lr is"
        );
        // ... and the schedule took effect: the compiled run follows the interpreter.
        let (got, want) = (
            &compiled_run.value("w").unwrap().data,
            &reference.value("w").unwrap().data,
        );
        assert_close(&format!("{name} after the schedule"), got, want, 1e-4, 0.1);
    }
}

// --------------------------------------------------------------- kernel counts

/// Kernels of the fused program of `graph` (the real pipeline: rewrite, lower, JIT).
fn kernel_names(graph: &Graph) -> Vec<String> {
    let exe = CompileCache::new().compile(graph, &CompileOptions::default()).unwrap();
    exe.program().kernels.iter().map(|k| k.name().to_string()).collect()
}

#[test]
fn every_optimizer_update_is_one_kernel() {
    // Gradients as graph inputs (the replay graph): the update of all four parameters,
    // of four different shapes, is ONE horizontal kernel, including IVON's and
    // IVON-PoCo's regenerated Philox noise.
    for name in OPTIMIZERS {
        let params: Vec<(String, Value)> = PARAMS
            .iter()
            .map(|(n, s)| (n.to_string(), Value::full(0.25, s.to_vec(), DType::F32)))
            .collect();
        let mut exec = Interpreter;
        let r = Replayer::new(make(name), &params, &mut exec).unwrap();
        let names = kernel_names(r.graph(Phase::Step).unwrap());
        assert_eq!(names.len(), 1, "{name}: {names:?}");
        assert!(names[0].starts_with("horizontal_4x_"), "{name}: {names:?}");
    }
}

/// Kernels of the fused MLP training step per optimizer (see the test).
const MLP_STEP_KERNELS: [(&str, usize); 8] = [
    ("sgd", 13),
    ("adam", 13),
    ("adamw", 13),
    ("vsgd", 14),
    ("constant-vsgd", 13),
    ("ivon", 19),
    ("svrg", 22),
    ("ivon-poco", 34),
];

#[test]
fn mlp_training_step_kernel_counts() {
    // A 13-16-16-3 MLP with cross-entropy, batch 8. Every update runs where its gradient
    // is produced (weights in their gradient matmul's epilogue, biases in their
    // reduction's last stage), so SGD/Adam/AdamW/constant VSGD add no kernel to the 13 of
    // forward + backward; VSGD's weight updates leave the matmul epilogues and form one
    // horizontal kernel (+1); IVON adds its sampling kernels θ = m + σz; SVRG and
    // IVON-PoCo evaluate two forward/backward passes. A change in these counts is a
    // change in what kiln fuses: update them only on purpose.
    let model = Mlp {
        features: 13,
        hidden: vec![16, 16],
        classes: 3,
    };
    let loss = |b: &GraphBuilder| {
        let x = b.input("x", [8, 13], DType::F32);
        let y = b.input("y", [8], DType::I32);
        model.forward(b, &x).cross_entropy(&y)
    };
    let mut got = Vec::new();
    for name in OPTIMIZERS {
        let mut o = make(name);
        if o.noise_source().is_some() {
            o.set_noise_source(NoiseSource::Philox).unwrap();
        }
        if *name == "ivon" {
            o.set("mc_samples", 1.0).unwrap();
        }
        let graphs = build_step(o.as_ref(), &loss).unwrap();
        let names = kernel_names(&graphs.step);
        eprintln!("{name}: {} kernels {names:?}", names.len());
        let horizontal = names.iter().filter(|n| n.starts_with("horizontal_")).count();
        assert!(horizontal <= 1, "{name}: {names:?}");
        got.push((*name, names.len()));
    }
    assert_eq!(got, MLP_STEP_KERNELS);
}

#[test]
fn the_cli_executor_is_the_compiled_pipeline() {
    // `kiln optim replay` runs CompiledExecutor: it compiles (once per graph) and its
    // result differs from the f64 interpreter by f32 rounding only.
    let text = json!({
        "optimizer": "adam",
        "hyper": {"lr": 0.1},
        "params": {"w": {"shape": [3], "data": [0.1, 0.2, 0.3]}},
        "grads": [{"w": [0.1, -0.2, 1e-3]}, {"w": [0.3, 0.2, -1e-3]}],
    })
    .to_string();
    let trace = Trace::parse(&text).unwrap();
    let mut exec = compiled(true);
    let steps = replay(&trace, &[], &mut exec).unwrap();
    assert_eq!(exec.runs, 2);
    let want = replay(&trace, &[], &mut Interpreter as &mut dyn Executor).unwrap();
    assert_ne!(steps, want, "f32 compiled vs f64 interpreter: not bit-identical");
    assert_close("adam", &steps[1]["w"], &want[1]["w"], 1e-6, 0.1);
}

/// Run `opt` compiled (fused) for 20 steps on the step inputs `steps` (each step's map may
/// hold more inputs than the graph takes; the extra ones are dropped), after one refresh
/// on `refresh` if the optimizer has that phase. The parameters after each step.
fn run_fused(
    opt: Box<dyn Optimizer>,
    refresh: &std::collections::HashMap<String, Value>,
    steps: &[std::collections::HashMap<String, Value>],
) -> Vec<Vec<f64>> {
    let params: Vec<(String, Value)> = PARAMS
        .iter()
        .map(|(n, s)| (n.to_string(), Value::full(0.3, s.to_vec(), DType::F32)))
        .collect();
    let mut exec = compiled(true);
    let mut r = Replayer::new(opt, &params, &mut exec).unwrap();
    let pick = |r: &Replayer, phase, all: &std::collections::HashMap<String, Value>| {
        r.inputs(phase)
            .into_iter()
            .map(|(n, _)| (n.clone(), all[&n].clone()))
            .collect::<std::collections::HashMap<_, _>>()
    };
    if r.graph(Phase::Refresh).is_some() {
        let inputs = pick(&r, Phase::Refresh, refresh);
        r.refresh_batch(true, 1.0, &inputs).unwrap();
    }
    let mut out = Vec::new();
    for all in steps {
        let inputs = pick(&r, Phase::Step, all);
        r.step(&inputs).unwrap();
        out.push(
            PARAMS
                .iter()
                .flat_map(|(n, _)| r.value(n).unwrap().data.clone())
                .collect(),
        );
    }
    out
}

#[test]
fn alpha_zero_reductions_hold_compiled() {
    // SVRG with α = 0 is SGD and IVON-PoCo with α = 0 is IVON (same seed, Philox noise),
    // bit for bit, in the fused compiled kernels too; with α > 0 they differ.
    let mut rng = Rng(21);
    let mut with_labels = |labels: &[&str]| {
        let needed: Vec<(String, kiln_ir::Shape)> = PARAMS
            .iter()
            .flat_map(|(n, s)| {
                labels.iter().map(move |l| {
                    let name = if l.is_empty() {
                        format!("grad.{n}")
                    } else {
                        format!("grad.{n}@{l}")
                    };
                    (name, kiln_ir::Shape::from(s.to_vec()))
                })
            })
            .collect();
        random_inputs(&mut rng, &needed)
    };
    let refresh = with_labels(&[""]);
    let steps: Vec<_> = (0..20).map(|_| with_labels(&["", "snapshot", "anchor"])).collect();
    let set = |name: &str, hyper: &[(&str, f64)]| {
        let mut o = by_name(name).unwrap();
        for (k, v) in hyper {
            o.set(k, *v).unwrap();
        }
        o
    };
    let sgd_h = [("lr", 0.05), ("momentum", 0.9), ("weight_decay", 0.01)];
    let sgd = run_fused(set("sgd", &sgd_h), &refresh, &steps);
    let svrg = |alpha: f64| {
        let mut h = sgd_h.to_vec();
        h.push(("alpha", alpha));
        run_fused(set("svrg", &h), &refresh, &steps)
    };
    assert_eq!(svrg(0.0), sgd, "SVRG α=0 vs SGD");
    assert_ne!(svrg(0.5), sgd);

    let ivon_h = [("lr", 0.1), ("ess", 40.0), ("beta2", 0.999), ("seed", 77.0)];
    let ivon = run_fused(set("ivon", &ivon_h), &refresh, &steps);
    let poco = |alpha: f64| {
        let mut h = ivon_h.to_vec();
        h.push(("alpha", alpha));
        run_fused(set("ivon-poco", &h), &refresh, &steps)
    };
    assert_eq!(poco(0.0), ivon, "IVON-PoCo α=0 vs IVON");
    assert_ne!(poco(0.5), ivon);
}
