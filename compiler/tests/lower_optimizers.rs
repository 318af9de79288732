//! Every optimizer's update over several parameters of different shapes (gradients and
//! noise as graph inputs, or Philox noise regenerated in the update) lowers to ONE
//! horizontal kernel, with and without the e-graph rewrite, and every lowering mode
//! matches the interpreter exactly (the kernel-IR evaluator, tolerance 0). For IVON and
//! IVON-PoCo this checks that the merged kernel draws each parameter's numbers with that
//! parameter's stream and element index.

mod lower_util;

use kiln_compiler::kernel::Kernel;
use kiln_compiler::lower::{lower, LowerOptions};
use kiln_compiler::rewrite::{rewrite, RewriteOptions};
use kiln_ir::{Graph, Value};
use kiln_models::optim::{by_name, Interpreter, NoiseSource, Phase, Replayer, OPTIMIZERS};

/// Odd sizes: a matrix, a 783-vector (not a multiple of 4), a scalar-like [1], a 17-vector.
const SHAPES: [(&str, &[usize]); 4] = [("w", &[3, 5]), ("v", &[783]), ("h", &[1]), ("b", &[17])];

fn graphs(name: &str, hyper: &[(&str, f64)], noise: NoiseSource) -> Vec<(Phase, Graph)> {
    let mut o = by_name(name).unwrap();
    o.set("lr", 0.1).unwrap();
    for (k, v) in hyper {
        o.set(k, *v).unwrap();
    }
    if o.noise_source().is_some() {
        o.set_noise_source(noise).unwrap();
    }
    let params: Vec<(String, Value)> = SHAPES
        .iter()
        .map(|(n, s)| (n.to_string(), Value::full(0.5, s.to_vec(), kiln_ir::DType::F32)))
        .collect();
    let mut exec = Interpreter;
    let r = Replayer::new(o, &params, &mut exec).unwrap();
    [Phase::Step, Phase::Refresh]
        .into_iter()
        .filter_map(|p| r.graph(p).map(|g| (p, g.clone())))
        .collect()
}

fn hyper(name: &str) -> Vec<(&'static str, f64)> {
    match name {
        "ivon" | "ivon-poco" => vec![("ess", 100.0)],
        "sgd" => vec![("momentum", 0.9)],
        _ => vec![],
    }
}

/// Lower `g` (optionally rewritten) in every mode, check each against the interpreter,
/// and return the fused program's kernel names.
fn fused_kernels(g: &Graph, rewritten: bool) -> Vec<String> {
    let g = if rewritten {
        rewrite(g, &RewriteOptions::default()).0
    } else {
        g.clone()
    };
    for seed in [3, 4] {
        lower_util::check(&g, seed);
    }
    let p = lower(&g, &LowerOptions::fused()).unwrap();
    p.kernels.iter().map(|k| k.name().to_string()).collect()
}

#[test]
fn every_optimizer_update_is_one_kernel_for_all_parameters() {
    for name in OPTIMIZERS {
        for noise in [NoiseSource::Philox, NoiseSource::Input] {
            for (phase, g) in graphs(name, &hyper(name), noise) {
                for rewritten in [false, true] {
                    let names = fused_kernels(&g, rewritten);
                    let what = format!("{name} {phase} ({noise:?}, rewrite {rewritten}): {names:?}");
                    match phase {
                        Phase::Step => {
                            assert_eq!(names.len(), 1, "{what}");
                            assert!(names[0].starts_with("horizontal_4x_"), "{what}");
                        }
                        // The refresh snapshots the parameters and accumulates the anchor
                        // statistics: SVRG one kernel each for all parameters; PoCo's
                        // statistics of the sampled anchor stay per parameter.
                        Phase::Refresh => {
                            let want = if *name == "svrg" { 2 } else { 6 };
                            assert_eq!(names.len(), want, "{what}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn ivon_with_two_samples_merges_both_draws() {
    for (phase, g) in graphs("ivon", &[("ess", 100.0), ("mc_samples", 2.0)], NoiseSource::Philox) {
        assert_eq!(phase, Phase::Step);
        let p = lower(&g, &LowerOptions::fused()).unwrap();
        assert_eq!(p.kernels.len(), 1, "{p}");
        let Kernel::Loop(k) = &p.kernels[0] else { panic!("{p}") };
        let draws = k.stages[0]
            .insts
            .iter()
            .filter(|(_, i)| matches!(i, kiln_compiler::kernel::Inst::Random { .. }))
            .count();
        assert_eq!(draws, 2, "one draw per sample, not per parameter:\n{p}");
        for seed in [5, 6] {
            lower_util::check(&g, seed);
        }
    }
}
