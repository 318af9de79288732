//! Experiment `convex`: the reference solver's accuracy (gradient norm at the solution,
//! agreement with kiln's autodiff graph on the f64 interpreter), the host gradient and
//! Hessian against kiln's first- and second-order autodiff, SVRH's reduction to Newton,
//! and the `--quick` pipeline end to end (files, JSON, plots; not the science).

use kiln::experiment::convex::problems::{interpret, objective_graph, Problem};
use kiln::experiment::convex::solver::newton;
use kiln::experiment::convex::svrh;
use kiln::experiment::{self, ExperimentOptions};
use kiln_runtime::data::Dataset;

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Deterministic pseudo-random numbers in [-1, 1).
fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// A small synthetic 3-class problem of odd sizes (n = 17, D = 3), some exact zeros.
fn synthetic(lambda: f64, batch: usize) -> Problem {
    let n = 17;
    let d = 3;
    let x: Vec<f32> = noise(n * d, 5)
        .iter()
        .enumerate()
        .map(|(i, v)| if i % 7 == 0 { 0.0 } else { *v as f32 * 2.0 })
        .collect();
    let y: Vec<i32> = (0..n).map(|i| (i * 5 % 3) as i32).collect();
    let data = Dataset::new("synthetic", x, y, vec![d], 3).unwrap();
    Problem::from_dataset("synthetic", "17 x 3, 3 classes", data, lambda, batch).unwrap()
}

#[test]
fn newton_reaches_the_minimum_and_kiln_autodiff_agrees() {
    for p in [Problem::load("heart-scale", None, 1e-3).unwrap(), synthetic(1e-2, 17)] {
        let s = newton(&p).unwrap();
        assert!(s.grad_norm < 1e-8, "{}: |grad F(theta*)| = {:e}", p.name, s.grad_norm);
        assert!(s.gap_bound < 1e-10, "{}: F - f* bound {:e}", p.name, s.gap_bound);
        // Independent check: kiln's DSL + autodiff, evaluated by the f64 interpreter.
        let og = objective_graph(&p).unwrap();
        let v = noise(p.dim(), 3);
        let at = interpret(&p, &og, &s.theta, &v).unwrap();
        assert!(
            (at.loss - s.f_star).abs() < 1e-12,
            "{}: interpreter F {} vs Newton f* {}",
            p.name,
            at.loss,
            s.f_star
        );
        assert!(
            norm(&at.grad) < 1e-8,
            "{}: interpreter |grad| {:e}",
            p.name,
            norm(&at.grad)
        );
        // A minimum: every nearby point is higher, by about (eps^2/2) v^T H v.
        let vhv: f64 = at.hv.iter().zip(&v).map(|(a, b)| a * b).sum();
        for eps in [1e-2, 1e-3] {
            let moved: Vec<f64> = s.theta.iter().zip(&v).map(|(t, d)| t + eps * d).collect();
            let rise = p.objective(&moved) - s.f_star;
            let predicted = 0.5 * eps * eps * vhv;
            assert!(rise > 0.0, "{}: F decreased along v", p.name);
            assert!(
                (rise - predicted).abs() < 0.05 * predicted,
                "{}: rise {rise:e} vs quadratic model {predicted:e}",
                p.name
            );
        }
    }
}

#[test]
fn host_gradient_and_hessian_match_kiln_autodiff() {
    for p in [synthetic(1e-2, 17), Problem::load("breast-cancer", None, 1e-3).unwrap()] {
        let og = objective_graph(&p).unwrap();
        for seed in 0..2 {
            let theta: Vec<f64> = noise(p.dim(), 10 + seed).iter().map(|v| 0.5 * v).collect();
            let v = noise(p.dim(), 20 + seed);
            let at = interpret(&p, &og, &theta, &v).unwrap();
            let (f, g) = p.objective_grad(&theta);
            assert!(
                (f - at.loss).abs() < 1e-12 * f.abs().max(1.0),
                "{}: F {f} vs {}",
                p.name,
                at.loss
            );
            let h = p.hessian(&theta);
            let d = p.dim();
            let scale = at.hv.iter().fold(1e-3f64, |m, x| m.max(x.abs()));
            for i in 0..d {
                assert!(
                    (g[i] - at.grad[i]).abs() < 1e-12,
                    "{}: grad[{i}] {} vs {}",
                    p.name,
                    g[i],
                    at.grad[i]
                );
                let hv: f64 = (0..d).map(|j| h[i * d + j] * v[j]).sum();
                assert!(
                    (hv - at.hv[i]).abs() < 1e-11 * scale,
                    "{}: (Hv)[{i}] explicit {hv} vs kiln double backward {}",
                    p.name,
                    at.hv[i]
                );
            }
            // Symmetric.
            for i in 0..d {
                for j in 0..i {
                    assert_eq!(h[i * d + j], h[j * d + i]);
                }
            }
        }
    }
}

#[test]
fn svrh_with_full_batches_and_unit_step_is_newton() {
    // batch = n: after each refresh m_out = m and H_B(m_out) = H_out, so the SVRH step is
    // s = lambda I + H(m), m <- m - s^-1 grad F(m): Newton, quadratically convergent.
    let p = synthetic(1e-2, 17);
    let s = newton(&p).unwrap();
    let settings = svrh::SvrhSettings {
        epochs: 8,
        evals_per_epoch: 1,
        rho: 1.0,
        alpha: 1.0,
        safeguard: false,
        seed: 0,
    };
    let (curve, counts) = svrh::run(&p, s.f_star, &settings).unwrap();
    assert_eq!(counts, svrh::SvrhCounts::default());
    let subs: Vec<f64> = curve.points.iter().map(|q| q.subopt).collect();
    assert!(subs.last().unwrap().abs() < 1e-13, "{subs:?}");
    assert_eq!(curve.refreshes.len(), 8);
    // The grad-evaluation count: n per refresh + 2n per step.
    assert_eq!(curve.points.last().unwrap().grad_evals, 8.0 * 3.0 * 17.0);
    // Without correction and a half step it is damped Newton: still converging, slower.
    let damped = svrh::SvrhSettings {
        rho: 0.5,
        alpha: 0.0,
        ..settings
    };
    let (c2, _) = svrh::run(&p, s.f_star, &damped).unwrap();
    let s2 = c2.points.last().unwrap().subopt;
    assert!(s2 < 1e-3 * c2.points[0].subopt && s2 > *subs.last().unwrap(), "{s2:e}");
}

#[test]
fn quick_mode_writes_results_and_plots() {
    let out = std::env::temp_dir().join(format!("kiln-convex-quick-{}", std::process::id()));
    let opts = ExperimentOptions {
        out_dir: out.clone(),
        quick: true,
        seeds: None,
        data_dir: None,
    };
    let started = std::time::Instant::now();
    let files = experiment::run("convex", &opts).unwrap();
    eprintln!("quick mode took {:.1} s", started.elapsed().as_secs_f64());
    for f in &files {
        assert!(f.exists(), "{} missing", f.display());
    }
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "results-convex.json",
        "results-convex-summary.md",
        "results-convex-heart-scale.svg",
        "results-convex-svrh-heart-scale.svg",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not written: {names:?}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results-convex.json")).unwrap()).unwrap();
    let problem = &json["problems"][0];
    let f_star = problem["solver"]["f_star"].as_f64().unwrap();
    let labels: Vec<&str> = problem["optimizers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "sgd",
            "adam",
            "ivon",
            "svrg",
            "ivon-poco",
            "ivon-poco (shared z)",
            "ivon (ess=100n)",
            "ivon-poco (shared z, no prox)",
            "ivon-poco (shared z, no prox, ess=100n)"
        ]
    );
    for o in problem["optimizers"].as_array().unwrap() {
        let label = o["label"].as_str().unwrap();
        let c = &o["seeds"][0];
        let sub: Vec<f64> = c["subopt"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        // θ0 = 0: F(0) = ln 2 for two classes.
        assert!((sub[0] - (2f64.ln() - f_star)).abs() < 1e-9, "{label}: {}", sub[0]);
        let refreshes = c["refreshes"].as_array().unwrap().len();
        // The pipeline, not the science: only the methods that are stable at the quick
        // learning rate must run to the end and make progress.
        if ["sgd", "adam", "ivon", "svrg"].contains(&label) {
            assert!(c["diverged"].is_null(), "{label}");
            assert_eq!(sub.len(), 1 + 3 * 3, "{label}: 3 epochs x 3 evaluations");
            assert!(sub.last().unwrap() < &sub[0], "{label}: no progress");
        }
        let want = if label == "svrg" || label.starts_with("ivon-poco") {
            1
        } else {
            0
        };
        assert!(
            refreshes >= want && refreshes <= 3 * want,
            "{label}: {refreshes} refreshes"
        );
    }
    assert_eq!(problem["svrh"].as_array().unwrap().len(), 3);
    let svg = std::fs::read_to_string(out.join("results-convex-heart-scale.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.matches("<polyline").count() == 2 * 9,
        "one line per optimizer and panel"
    );
    let summary = std::fs::read_to_string(out.join("results-convex-summary.md")).unwrap();
    assert!(summary.contains("| ivon-poco |"));
    std::fs::remove_dir_all(&out).ok();
}
