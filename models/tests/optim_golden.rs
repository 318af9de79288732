//! Every golden vector of research notes vsgd.md §6 and ivon_poco.md §6, through the
//! library API (graphs built by `build_phase`, gradients computed inside the graph at the
//! optimizer's evaluation points, run by the reference interpreter) and through
//! `optim::replay` (a JSON trace with the gradients as inputs).

// The golden literals are copied verbatim from the research notes.
#![allow(clippy::excessive_precision)]

mod optim_util;

use std::collections::HashMap;

use kiln_ir::{DType, Value};
use kiln_models::optim::{by_name, replay, Interpreter, IvonPoco, NoiseSource, Optimizer, Phase, Replayer, Trace};
use optim_util::reference::{Ivon as RefIvon, Sgd as RefSgd, Svrg as RefSvrg};
use optim_util::{assert_close, LibRun};
use serde_json::json;

fn opt(name: &str, hyper: &[(&str, f64)], noise: bool) -> Box<dyn Optimizer> {
    let mut o = by_name(name).unwrap();
    for (k, v) in hyper {
        o.set(k, *v).unwrap();
    }
    if noise {
        o.set_noise_source(NoiseSource::Input).unwrap();
    }
    o
}

fn v3(x: &[f64]) -> Value {
    Value::new([x.len()], DType::F32, x.to_vec()).unwrap()
}

// ----------------------------------------------------------------- VSGD (vsgd.md §6)

const VSGD_THETA0: [f64; 3] = [1.0, -0.5, 0.25];
const VSGD_GRADS: [[f64; 3]; 3] = [[0.5, -1.0, 0.01], [0.4, 0.5, -0.02], [-0.1, -0.8, 0.03]];

#[test]
fn vsgd_exact_table_through_the_library() {
    // §6.1, f64: (μ, B_g, B_h, θ) after each step.
    let table: [[[f64; 3]; 4]; 3] = [
        [
            [1.612903226e-02, -3.225806452e-02, 3.225806452e-04],
            [4.536753667e-04, 1.234112411e-03, 1.936337434e-04],
            [2.343252231e-01, 9.367185634e-01, 2.877621305e-04],
            [0.924273989, -0.408174280, 0.247681699],
        ],
        [
            [1.687080591e-02, -3.155774530e-02, -7.851850378e-03],
            [4.534747540e-04, 1.233407078e-03, 1.873274244e-04],
            [1.876581218e-01, 5.868209888e-01, 2.749820460e-04],
            [0.862145510, -0.341320916, 0.306635251],
        ],
        [
            [1.658906911e-02, -3.316950456e-02, 7.485688858e-03],
            [4.530480115e-04, 1.233369161e-03, 2.527710908e-04],
            [1.230672647e-01, 5.877285149e-01, 4.029357163e-04],
            [0.800642645, -0.272617890, 0.248786647],
        ],
    ];
    let beta1: [[f64; 3]; 3] = [
        [0.99807, 0.99868, 0.59777],
        [0.99759, 0.99790, 0.59480],
        [0.99633, 0.99791, 0.61451],
    ];
    let mut exec = Interpreter;
    let mut r = Replayer::new(by_name("vsgd").unwrap(), &[("w".into(), v3(&VSGD_THETA0))], &mut exec).unwrap();
    for (t, g) in VSGD_GRADS.iter().enumerate() {
        r.step(&HashMap::from([("grad.w".to_string(), v3(g))])).unwrap();
        let row = &table[t];
        let s = |n: &str| r.value(n).unwrap().data.clone();
        // The table has 10 significant digits.
        assert_close(&format!("mu step {}", t + 1), &s("w.vsgd.mu"), &row[0], 5e-9, 0.0);
        assert_close(&format!("B_g step {}", t + 1), &s("w.vsgd.bg"), &row[1], 5e-9, 0.0);
        assert_close(&format!("B_h step {}", t + 1), &s("w.vsgd.bh"), &row[2], 5e-9, 0.0);
        assert_close(&format!("theta step {}", t + 1), &s("w"), &row[3], 5e-9, 0.0);
        let (bg, bh) = (s("w.vsgd.bg"), s("w.vsgd.bh"));
        let b1: Vec<f64> = (0..3).map(|i| bh[i] / (bg[i] + bh[i])).collect();
        assert_close(&format!("beta1 step {}", t + 1), &b1, &beta1[t], 1e-5, 0.0);
    }
}

fn vsgd_trace(name: &str, hyper: serde_json::Value) -> Trace {
    let text = json!({
        "optimizer": name,
        "hyper": hyper,
        "params": {"w": {"shape": [3], "data": VSGD_THETA0}},
        "grads": VSGD_GRADS.iter().map(|g| json!({"w": g})).collect::<Vec<_>>(),
    })
    .to_string();
    Trace::parse(&text).unwrap()
}

#[test]
fn vsgd_exact_table_through_replay() {
    let theta = [
        [0.924273989, -0.408174280, 0.247681699],
        [0.862145510, -0.341320916, 0.306635251],
        [0.800642645, -0.272617890, 0.248786647],
    ];
    let steps = replay(&vsgd_trace("vsgd", json!({})), &[], &mut Interpreter).unwrap();
    assert_eq!(steps.len(), 3);
    for (t, s) in steps.iter().enumerate() {
        assert_close(&format!("theta step {}", t + 1), &s["w"], &theta[t], 5e-9, 0.0);
    }
    // The fp32 reference (§6.2) is within the note's loose tolerance of 1e-4.
    let fp32 = [0.800643682, -0.272618324, 0.24878639];
    assert_close("theta vs fp32 reference", &steps[2]["w"], &fp32, 1e-4, 0.0);
}

#[test]
fn vsgd_weight_decay_table() {
    let theta = [
        [0.914273989, -0.403174280, 0.245181699],
        [0.843002770, -0.332289173, 0.301683434],
        [0.773069878, -0.260263256, 0.240817996],
    ];
    let steps = replay(&vsgd_trace("vsgd", json!({"weight_decay": 0.1})), &[], &mut Interpreter).unwrap();
    for (t, s) in steps.iter().enumerate() {
        assert_close(&format!("theta step {}", t + 1), &s["w"], &theta[t], 5e-9, 0.0);
    }
    // The same through `--set`-style overrides instead of the trace's hyper block.
    let over = replay(
        &vsgd_trace("vsgd", json!({})),
        &[("weight_decay".into(), 0.1)],
        &mut Interpreter,
    )
    .unwrap();
    assert_eq!(over, steps);
}

#[test]
fn constant_vsgd_first_step_is_vsgds() {
    // Frozen precisions: step 1 is VSGD's step 1 (σ² = 1.935096852e-4, weight 1/31).
    let steps = replay(&vsgd_trace("constant-vsgd", json!({})), &[], &mut Interpreter).unwrap();
    assert_close(
        "theta step 1",
        &steps[0]["w"],
        &[0.924273989, -0.408174280, 0.247681699],
        5e-9,
        0.0,
    );
    // Afterwards μ is a plain EMA with weight 1/31 on the gradient.
    let mut mu = [0.0f64; 3];
    for g in &VSGD_GRADS {
        for i in 0..3 {
            mu[i] = mu[i] * 30.0 / 31.0 + g[i] / 31.0;
        }
    }
    let mut exec = Interpreter;
    let mut r = Replayer::new(
        by_name("constant-vsgd").unwrap(),
        &[("w".into(), v3(&VSGD_THETA0))],
        &mut exec,
    )
    .unwrap();
    for g in &VSGD_GRADS {
        r.step(&HashMap::from([("grad.w".to_string(), v3(g))])).unwrap();
    }
    assert_close("mu", &r.value("w.constant_vsgd.mu").unwrap().data, &mu, 1e-12, 0.0);
}

// ------------------------------------------------------------ IVON (ivon_poco.md §6.1)

const A: [f64; 3] = [1.0, 2.0, 0.5];
const C: [f64; 3] = [0.5, -1.0, 2.0];
const M0: [f64; 3] = [0.1, -0.2, 0.3];
const Z: [[f64; 3]; 3] = [[0.5, -1.0, 1.5], [-0.3, 0.8, -1.2], [1.1, 0.2, -0.7]];

fn case_a() -> Vec<(&'static str, f64)> {
    vec![("lr", 0.1), ("ess", 100.0)]
}

fn case_b() -> Vec<(&'static str, f64)> {
    vec![
        ("lr", 0.5),
        ("ess", 10.0),
        ("hess_init", 0.5),
        ("beta2", 0.9),
        ("weight_decay", 0.1),
        ("clip_radius", 0.3),
    ]
}

#[test]
fn ivon_case_a() {
    let mut r = LibRun::new(opt("ivon", &case_a(), true), &M0);
    r.step(&A, &C, &[("", &Z[0])]);
    assert_close(
        "theta1",
        &r.out("point"),
        &[0.149997500187, -0.299995000375, 0.449992500562],
        1e-11,
        0.0,
    );
    assert_close(
        "g1",
        &r.out("grad"),
        &[-0.350002499813, 1.40000999925, -0.775003749719],
        1e-11,
        0.0,
    );
    let mom1 = [-0.035000249981251556, 0.14000099992500623, -0.077500374971877325];
    assert_close("mom1", &r.get("w.ivon.momentum"), &mom1, 1e-13, 0.0);
    let h1 = [0.99997249937813981, 0.99985000325027562, 0.99987375159469905];
    assert_close("h1", &r.get("w.ivon.hess"), &h1, 1e-13, 0.0);
    let m1 = [0.13500021241261501, -0.34002000036991364, 0.37750715914870159];
    assert_close("m1", &r.get("w"), &m1, 1e-13, 0.0);

    r.step(&A, &C, &[("", &Z[1])]);
    assert_close(
        "theta2",
        &r.out("point"),
        &[0.105001299844, -0.260018000425, 0.257505584213],
        1e-11,
        0.0,
    );
    assert_close(
        "g2",
        &r.out("grad"),
        &[-0.394998700156, 1.47996399915, -0.871247207893],
        1e-11,
        0.0,
    );
    let m2 = [0.17236829185614516, -0.48423170326973797, 0.4600718207901785];
    assert_close("m2", &r.get("w"), &m2, 1e-13, 0.0);
    let h2 = [0.9999743500454128, 0.99995840478550535, 0.99996830561991634];
    assert_close("h2", &r.get("w.ivon.hess"), &h2, 1e-13, 0.0);

    r.step(&A, &C, &[("", &Z[2])]);
    let mom3 = [-0.085663665215673424, 0.35375111240436519, -0.2216838418693981];
    let h3 = [0.99994041005021128, 0.99996983660112326, 1.0000146563379226];
    let m3 = [0.20397866021181169, -0.61476626375689236, 0.54186817702816892];
    assert_close("mom3", &r.get("w.ivon.momentum"), &mom3, 1e-13, 0.0);
    assert_close("h3", &r.get("w.ivon.hess"), &h3, 1e-13, 0.0);
    assert_close("m3", &r.get("w"), &m3, 1e-13, 0.0);
    // The fp32 reference is within the note's f32 tolerance.
    assert_close(
        "m3 vs fp32",
        &r.get("w"),
        &[0.203978673, -0.6147663, 0.54186821],
        1e-6,
        0.0,
    );
}

#[test]
fn ivon_case_b_clips() {
    let mut r = LibRun::new(opt("ivon", &case_b(), true), &M0);
    r.step(&A, &C, &[("", &Z[0])]);
    assert_close(
        "theta1",
        &r.out("point"),
        &[0.304124145232, -0.608248290464, 0.912372435696],
        1e-11,
        0.0,
    );
    let mom1 = [-0.019587585476806842, 0.078350341907227367, -0.05438137821521026];
    assert_close("mom1", &r.get("w.ivon.momentum"), &mom1, 1e-13, 0.0);
    let h1 = [0.43057227992998909, 0.30685205144336442, 0.30219423048213906];
    assert_close("h1", &r.get("w.ivon.hess"), &h1, 1e-13, 0.0);
    assert_close(
        "m1",
        &r.get("w"),
        &[0.19, -0.29000000000000004, 0.39000000000000001],
        1e-13,
        0.0,
    );
    r.step(&A, &C, &[("", &Z[1])]);
    let h2 = [0.41808727117550737, 0.76427507922272853, 0.60665680162952462];
    assert_close("h2", &r.get("w.ivon.hess"), &h2, 1e-13, 0.0);
    assert_close(
        "m2",
        &r.get("w"),
        &[0.28000000000000003, -0.38, 0.47999999999999998],
        1e-13,
        0.0,
    );
    r.step(&A, &C, &[("", &Z[2])]);
    let mom3 = [-0.029160513666790983, 0.40026101437233164, -0.2325914651597657];
    let h3 = [0.44275656257166446, 0.76876760535694988, 0.71975166957547609];
    let m3 = [0.32399948906393711, -0.46999999999999997, 0.56999999999999995];
    assert_close("mom3", &r.get("w.ivon.momentum"), &mom3, 1e-13, 0.0);
    assert_close("h3", &r.get("w.ivon.hess"), &h3, 1e-13, 0.0);
    assert_close("m3", &r.get("w"), &m3, 1e-13, 0.0);
    assert_close(
        "m3 vs fp32",
        &r.get("w"),
        &[0.323999494, -0.470000029, 0.570000052],
        1e-6,
        0.0,
    );
}

#[test]
fn ivon_case_c_two_samples() {
    let mut hyper = case_a();
    hyper.push(("mc_samples", 2.0));
    let mut r = LibRun::new(opt("ivon", &hyper, true), &M0);
    r.step(&A, &C, &[("", &Z[0]), ("sample1", &Z[1])]);
    let h1 = [0.99998769987564495, 0.99999039924610311, 0.99998647445397826];
    let m1 = [0.13899952964734966, -0.35799961675626057, 0.38424817688584256];
    assert_close("h1", &r.get("w.ivon.hess"), &h1, 1e-13, 0.0);
    assert_close("m1", &r.get("w"), &m1, 1e-13, 0.0);
    r.step(&A, &C, &[("", &Z[1]), ("sample1", &Z[2])]);
    let h2 = [0.99996975950756928, 1.0000514041427038, 1.0000580536805275];
    let m2 = [0.17436777089819597, -0.50567250687680532, 0.46916699427851771];
    assert_close("h2", &r.get("w.ivon.hess"), &h2, 1e-13, 0.0);
    assert_close("m2", &r.get("w"), &m2, 1e-13, 0.0);
}

fn grad(theta: &[f64], a: &[f64], c: &[f64]) -> Vec<f64> {
    (0..theta.len()).map(|i| a[i] * (theta[i] - c[i])).collect()
}

#[test]
fn ivon_cases_a_and_b_through_replay() {
    // The trace's gradients are those of the toy loss at the sampled weights, which the
    // independent reference implementation produces; replay must land on the table.
    for (hyper, want) in [
        (
            case_a(),
            [0.20397866021181169, -0.61476626375689236, 0.54186817702816892],
        ),
        (
            case_b(),
            [0.32399948906393711, -0.46999999999999997, 0.56999999999999995],
        ),
    ] {
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
        let mut grads = Vec::new();
        for z in &Z {
            let g = grad(&reference.sample(&m, z), &A, &C);
            grads.push(json!({ "w": g }));
            reference.step(&mut m, &[g], &[z.to_vec()]);
        }
        let hyper_json: serde_json::Map<String, serde_json::Value> =
            hyper.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        let text = json!({
            "optimizer": "ivon",
            "hyper": hyper_json,
            "params": {"w": {"shape": [3], "data": M0}},
            "grads": grads,
            "noise": Z.iter().map(|z| json!({"w": z})).collect::<Vec<_>>(),
        })
        .to_string();
        let steps = replay(&Trace::parse(&text).unwrap(), &[], &mut Interpreter).unwrap();
        assert_close("m3", &steps[2]["w"], &want, 1e-12, 0.0);
    }
}

// ------------------------------------------------------------ SVRG (ivon_poco.md §6.2)

const SA: [[f64; 3]; 4] = [[1.0, 2.0, 0.5], [0.5, 1.0, 2.0], [2.0, 0.5, 1.0], [1.0, 1.0, 1.0]];
const SC: [[f64; 3]; 4] = [[0.5, -1.0, 2.0], [-1.0, 0.0, 1.0], [0.0, 1.0, -1.0], [1.0, 0.5, 0.0]];

fn full_refresh(r: &mut LibRun) {
    for j in 0..4 {
        r.refresh(j == 0, 0.25, &SA[j], &SC[j], &[]);
    }
}

#[test]
fn svrg_alpha_one() {
    let mut r = LibRun::new(opt("svrg", &[("lr", 0.2), ("alpha", 1.0)], false), &M0);
    full_refresh(&mut r);
    assert_close("snapshot", &r.get("w.svrg.snapshot"), &M0, 0.0, 0.0);
    assert_close("mu~", &r.get("w.svrg.mu"), &[-0.1375, 0.025, -0.1625], 1e-13, 0.0);
    r.step(&SA[2], &SC[2], &[]);
    assert_close("theta after i=2", &r.get("w"), &[0.1275, -0.205, 0.3325], 1e-13, 0.0);
    r.step(&SA[0], &SC[0], &[]);
    assert_close("g_in", &r.out("grad"), &[-0.3725, 1.59, -0.83375], 1e-13, 0.0);
    assert_close("g_out", &r.out("grad@snapshot"), &[-0.4, 1.6, -0.85], 1e-13, 0.0);
    assert_close("theta after i=0", &r.get("w"), &[0.1495, -0.208, 0.36175], 1e-13, 0.0);
    full_refresh(&mut r);
    assert_close(
        "mu~ 2",
        &r.get("w.svrg.mu"),
        &[-0.0818125, 0.016, -0.09303125],
        1e-13,
        0.0,
    );
    r.step(&SA[3], &SC[3], &[]);
    assert_close(
        "theta after i=3",
        &r.get("w"),
        &[0.1658625, -0.2112, 0.38035625],
        1e-13,
        0.0,
    );
    r.step(&SA[1], &SC[1], &[]);
    assert_close("theta final", &r.get("w"), &[0.18058875, -0.21376, 0.39152], 1e-13, 0.0);
}

#[test]
fn svrg_alpha_half() {
    let mut r = LibRun::new(opt("svrg", &[("lr", 0.2), ("alpha", 0.5)], false), &M0);
    full_refresh(&mut r);
    r.step(&SA[2], &SC[2], &[]);
    assert_close("theta after i=2", &r.get("w"), &[0.09375, -0.1425, 0.18625], 1e-13, 0.0);
    r.step(&SA[0], &SC[0], &[]);
    assert_close("theta after i=0", &r.get("w"), &[0.14875, -0.328, 0.298875], 1e-13, 0.0);
    full_refresh(&mut r);
    assert_close(
        "mu~ 2",
        &r.get("w.svrg.mu"),
        &[-0.08265625, -0.119, -0.163765625],
        1e-13,
        0.0,
    );
    r.step(&SA[3], &SC[3], &[]);
    assert_close(
        "theta after i=3",
        &r.get("w"),
        &[0.242140625, -0.2333, 0.2853640625],
        1e-13,
        0.0,
    );
    r.step(&SA[1], &SC[1], &[]);
    assert_close(
        "theta final",
        &r.get("w"),
        &[0.1836296875, -0.20754, 0.44737],
        1e-13,
        0.0,
    );
}

#[test]
fn svrg_through_replay() {
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
        let mut refresh = Vec::new();
        let mut grads = Vec::new();
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
        let steps = replay(&Trace::parse(&text).unwrap(), &[], &mut Interpreter).unwrap();
        assert_close("theta final", &steps[3]["w"], &want, 1e-13, 0.0);
    }
}

// ------------------------------------------------------- IVON-PoCo (ivon_poco.md §6.3)

const Z_A: [f64; 3] = [0.3, -0.6, 0.9];
const Z_IN: [f64; 3] = [0.5, -1.0, 1.5];
const Z_OUT: [f64; 3] = [-0.3, 0.8, -1.2];
const M_OUT: [f64; 3] = [0.1, -0.2, 0.3];
const H_OUT: [f64; 3] = [1.0, 1.5, 0.8];
const G_OUT: [f64; 3] = [0.0304125258479, -0.249653604835, 0.4];
const HBAR_OUT: [f64; 3] = [0.0183385261258, 0.368135382818, 0.648];
const M_IN: [f64; 3] = [0.2, -0.1, 0.5];
const H_IN: [f64; 3] = [1.2, 1.4, 0.9];
const MOM_IN: [f64; 3] = [0.05, -0.02, 0.1];

fn poco_hyper(alpha: f64, prox: bool) -> Vec<(&'static str, f64)> {
    vec![
        ("lr", 0.1),
        ("ess", 4.0),
        ("beta2", 0.99),
        ("weight_decay", 0.01),
        ("alpha", alpha),
        ("prox", prox as u8 as f64),
    ]
}

/// Refresh at (M_OUT, H_OUT) over the 4 examples with the one anchor draw z_a, then set
/// the inner state and leave the run at t = 4.
fn poco_anchored(alpha: f64, prox: bool) -> LibRun {
    let mut r = LibRun::new(opt("ivon-poco", &poco_hyper(alpha, prox), true), &M_OUT);
    r.set("w.ivon_poco.hess", &H_OUT);
    for j in 0..4 {
        r.refresh(j == 0, 0.25, &SA[j], &SC[j], &[("", &Z_A)]);
    }
    r.set("w", &M_IN);
    r.set("w.ivon_poco.hess", &H_IN);
    r.set("w.ivon_poco.momentum", &MOM_IN);
    r.t = 4;
    r
}

#[test]
fn poco_refresh_statistics() {
    let r = poco_anchored(1.0, true);
    assert_close("m_out", &r.get("w.ivon_poco.m_out"), &M_OUT, 0.0, 0.0);
    assert_close("h_out", &r.get("w.ivon_poco.h_out"), &H_OUT, 0.0, 0.0);
    assert_close("g_out", &r.get("w.ivon_poco.g_out"), &G_OUT, 1e-11, 0.0);
    assert_close("hbar_out", &r.get("w.ivon_poco.hbar_out"), &HBAR_OUT, 1e-11, 0.0);
    let sigma_out = [0.497518595105, 0.406894229386, 0.555555555556];
    let anchor: Vec<f64> = (0..3).map(|i| M_OUT[i] + sigma_out[i] * Z_A[i]).collect();
    assert_close("anchor sample", &r.out("point"), &anchor, 1e-11, 0.0);
}

#[test]
fn poco_inner_step_variants() {
    let cases = [
        (
            1.0,
            true,
            [1.1969931157452858, 1.4164344846836596, 0.97981012616089036],
            [0.17062513042997338, -0.089033320828760046, 0.41586457357283274],
        ),
        (
            1.0,
            false,
            [1.1969931157452858, 1.4164344846836596, 0.97981012616089036],
            [0.17054122261937282, -0.08691040013780843, 0.42591132120650832],
        ),
        (
            0.5,
            true,
            [1.197197937147775, 1.4102376913053123, 0.96893760262049178],
            [0.17190515336159296, -0.086290561372879243, 0.41706996118187495],
        ),
    ];
    for (alpha, prox, h_new, m_new) in cases {
        let mut r = poco_anchored(alpha, prox);
        r.step(&SA[2], &SC[2], &[("", &Z_IN), ("anchor", &Z_OUT)]);
        let what = format!("alpha={alpha} prox={prox}");
        let theta_in = [0.427272727273, -0.521075960533, 1.28621362754];
        let theta_out = [-0.0492555785315, 0.125515383508, -0.366666666667];
        assert_close(&format!("{what} theta_in"), &r.out("point"), &theta_in, 1e-11, 0.0);
        assert_close(
            &format!("{what} theta_out"),
            &r.out("point@anchor"),
            &theta_out,
            1e-11,
            0.0,
        );
        let g_in = [0.854545454545, -0.760537980267, 2.28621362754];
        let g_out = [-0.098511157063, -0.437242308246, 0.633333333333];
        assert_close(&format!("{what} g_in"), &r.out("grad"), &g_in, 1e-11, 0.0);
        assert_close(&format!("{what} g_out"), &r.out("grad@anchor"), &g_out, 1e-11, 0.0);
        // The anchor statistics came through a 12-digit-accurate refresh; 1e-10 covers it.
        assert_close(&format!("{what} h_new"), &r.get("w.ivon_poco.hess"), &h_new, 1e-10, 0.0);
        assert_close(&format!("{what} m_new"), &r.get("w"), &m_new, 1e-10, 0.0);
    }
}

#[test]
fn poco_alpha_zero_is_ivon_bit_for_bit() {
    let mut poco = poco_anchored(0.0, true);
    poco.step(&SA[2], &SC[2], &[("", &Z_IN), ("anchor", &Z_OUT)]);
    let hyper = [("lr", 0.1), ("ess", 4.0), ("beta2", 0.99), ("weight_decay", 0.01)];
    let mut ivon = LibRun::new(opt("ivon", &hyper, true), &M_IN);
    ivon.set("w.ivon.hess", &H_IN);
    ivon.set("w.ivon.momentum", &MOM_IN);
    ivon.t = 4;
    ivon.step(&SA[2], &SC[2], &[("", &Z_IN)]);
    assert_eq!(poco.get("w"), ivon.get("w"));
    assert_eq!(poco.get("w.ivon_poco.hess"), ivon.get("w.ivon.hess"));
    assert_eq!(poco.get("w.ivon_poco.momentum"), ivon.get("w.ivon.momentum"));
}

#[test]
fn poco_through_replay() {
    // The anchor statistics and the inner state come in `state`; the trace starts at t = 5.
    let g_in = [0.854545454545, -0.760537980267, 2.28621362754];
    let g_out = [-0.098511157063, -0.437242308246, 0.633333333333];
    let t = |d: &[f64; 3]| json!({"shape": [3], "data": d});
    let text = json!({
        "optimizer": "ivon-poco",
        "hyper": {"lr": 0.1, "ess": 4, "beta2": 0.99, "weight_decay": 0.01, "alpha": 1, "prox": true},
        "params": {"w": t(&M_IN)},
        "state": {
            "w.ivon_poco.hess": t(&H_IN), "w.ivon_poco.momentum": t(&MOM_IN),
            "w.ivon_poco.m_out": t(&M_OUT), "w.ivon_poco.h_out": t(&H_OUT),
            "w.ivon_poco.g_out": t(&G_OUT), "w.ivon_poco.hbar_out": t(&HBAR_OUT),
        },
        "start_step": 5,
        "grads": [{"w": g_in, "w@anchor": g_out}],
        "noise": [{"w": Z_IN, "w@anchor": Z_OUT}],
    })
    .to_string();
    let steps = replay(&Trace::parse(&text).unwrap(), &[], &mut Interpreter).unwrap();
    let want = [0.17062513042997338, -0.089033320828760046, 0.41586457357283274];
    assert_close("m_new", &steps[0]["w"], &want, 1e-10, 0.0);
}

#[test]
fn poco_builds_both_phases_with_philox_noise() {
    // Sanity of the default (Philox) configuration: the graphs build and have the inputs
    // the docs promise (gradients only).
    let mut o = IvonPoco::new();
    o.set("lr", 0.1).unwrap();
    o.set("ess", 10.0).unwrap();
    let mut exec = Interpreter;
    let r = Replayer::new(Box::new(o), &[("w".into(), v3(&M0))], &mut exec).unwrap();
    let names = |p| r.inputs(p).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    assert_eq!(names(Phase::Step), vec!["grad.w", "grad.w@anchor"]);
    assert_eq!(names(Phase::Refresh), vec!["grad.w"]);
}
