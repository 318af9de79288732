//! Whole training steps: an MLP's forward pass, cross-entropy loss, reverse-mode
//! gradients (autodiff) and a real optimizer update (kiln-models) in ONE graph, lowered
//! fused and unfused, run for several steps through the kernel-IR evaluator and
//! compared with the reference interpreter step by step (outputs and every updated
//! parameter/state). Also pins the fused step's kernel count.

mod lower_util;

use kiln_compiler::autodiff::grad_tensors;
use kiln_compiler::kernel::eval::eval_program;
use kiln_compiler::kernel::Kernel;
use kiln_compiler::lower::{lower, memory_report, LowerOptions};
use kiln_ir::interp::{apply_updates, evaluate, Bindings};
use kiln_ir::{DType, Graph, GraphBuilder, Init, SourceKind, Tensor, Value};
use kiln_models::optim::{build_phase, Adam, OptimError, Optimizer, Phase, Sgd, Vsgd};
use lower_util::{rel_diff, Rng};

fn mlp_step(opt: &dyn Optimizer, sizes: &[usize], batch: usize) -> Graph {
    let b = GraphBuilder::new();
    let x = b.input("x", [batch, sizes[0]], DType::F32);
    let labels = b.input("labels", [batch], DType::I32);
    let mut h = x.clone();
    for (i, w) in sizes.windows(2).enumerate() {
        let wt = b.param(
            &format!("l{i}.weight"),
            [w[0], w[1]],
            Init::KaimingUniform { fan_in: w[0] },
        );
        let bias = b.param(&format!("l{i}.bias"), [w[1]], Init::Uniform { low: -0.1, high: 0.1 });
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
    build_phase(opt, Phase::Step, &b, &params, &mut |point| {
        let wrt: Vec<&Tensor> = point.params.iter().collect();
        grad_tensors(&loss, &wrt).map_err(|e| OptimError::Invalid {
            optimizer: "test",
            detail: e.to_string(),
        })
    })
    .unwrap();
    b.finish().unwrap()
}

fn batch_bindings(g: &Graph, rng: &mut Rng, classes: usize) -> Bindings {
    let mut b = Bindings::new();
    for id in g.sources_of(SourceKind::Input) {
        let n = g.node(id);
        let name = n.op.source_name().unwrap().to_string();
        let data: Vec<f64> = (0..n.shape().numel())
            .map(|_| match n.dtype() {
                DType::I32 => rng.below(classes as u64) as f64,
                _ => rng.uniform(-1.0, 1.0) as f32 as f64,
            })
            .collect();
        b.insert(name, Value::new(n.shape().clone(), n.dtype(), data).unwrap());
    }
    b
}

/// Run `steps` steps of `g` in the interpreter and through `eval(lower(g, opts))`,
/// feeding each its own updated state, and compare after every step.
fn train_and_compare(opt: &dyn Optimizer, g: &Graph, opts: &LowerOptions, classes: usize, steps: u64, tol: f64) {
    let p = lower(g, opts).unwrap();
    let mut want = kiln_ir::init::initial_bindings(g, 7);
    let mut got = want.clone();
    let mut rng = Rng(11);
    for step in 1..=steps {
        let mut batch = batch_bindings(g, &mut rng, classes);
        for (name, v) in opt.scalars(step).unwrap() {
            let dtype = g.node(g.source(&name).unwrap()).dtype();
            batch.insert(name, Value::scalar(v, dtype));
        }
        want.extend(batch.clone());
        got.extend(batch);
        let eval = evaluate(g, &want).unwrap();
        let run = eval_program(&p, &got).unwrap_or_else(|e| panic!("step {step}: {e}\n{p}"));
        let loss = eval.output(g, "loss").unwrap();
        let d = rel_diff(&run.outputs["loss"].data, &loss.data);
        assert!(
            d <= tol,
            "{}: step {step}: loss {} vs {}",
            opt.name(),
            run.outputs["loss"],
            loss
        );
        apply_updates(g, &eval, &mut want);
        run.apply_updates(&mut got);
        for (name, v) in &want {
            let d = rel_diff(&got[name].data, &v.data);
            assert!(d <= tol, "{}: step {step}: `{name}` differs by {d}", opt.name());
        }
    }
}

/// The "done when": the MLP forward+backward(+optimizer) graph runs fused and
/// matches the interpreter, for several optimizers and odd sizes.
#[test]
fn mlp_training_steps_match_the_interpreter() {
    let sizes = [13, 17, 5, 3];
    let opts: Vec<Box<dyn Optimizer>> = vec![Box::new(Adam::new()), Box::new(Sgd::new()), Box::new(Vsgd::new())];
    for opt in &opts {
        let g = mlp_step(opt.as_ref(), &sizes, 7);
        for (what, lo) in lower_util::modes() {
            let _ = what;
            train_and_compare(opt.as_ref(), &g, &lo, sizes[3], 3, 0.0);
        }
    }
}

/// The fused Adam step of a 3-layer MLP is 13 kernels: 3 forward matmuls (bias/ReLU
/// epilogues; the last layer's bias is added where the logits are read), ONE row
/// kernel for cross-entropy forward AND backward (max, sum of exp, picked
/// log-probability, d logits), the batch mean of the loss, and per layer a
/// weight-gradient matmul with that weight's Adam update as epilogue and a
/// bias-gradient reduction with the bias's Adam update in its last stage, plus the two
/// input-gradient matmuls with the ReLU mask as epilogue. Every parameter and state is
/// updated in place.
#[test]
fn fused_adam_mlp_step_kernels() {
    let g = mlp_step(&Adam::new(), &[13, 17, 5, 3], 7);
    let p = lower(&g, &LowerOptions::fused()).unwrap();
    let names: Vec<&str> = p.kernels.iter().map(|k| k.name()).collect();
    let matmuls = p.kernels.iter().filter(|k| matches!(k, Kernel::MatMul(_))).count();
    assert_eq!(matmuls, 3 + 3 + 2, "{names:?}");
    assert_eq!(p.launches(), 13, "{names:?}");
    let rows: Vec<&Kernel> = p
        .kernels
        .iter()
        .filter(|k| k.name().starts_with("reduce_max_sum"))
        .collect();
    let [Kernel::Loop(row)] = rows[..] else {
        panic!("{names:?}")
    };
    assert_eq!(row.outer, vec![7]);
    let r = memory_report(&p);
    assert_eq!((r.in_place_updates, r.copied_updates), (18, 0), "{p}");
    let unfused = lower(&g, &LowerOptions::unfused()).unwrap();
    assert!(
        unfused.launches() > 4 * p.launches(),
        "{} vs {}",
        unfused.launches(),
        p.launches()
    );
}

/// With `fuse_updates: false` the gradients are materialised instead: every gradient
/// kernel writes into ONE gradient arena and a single horizontal kernel applies Adam to
/// all 6 parameters (14 kernels in all), still in place.
#[test]
fn separate_adam_updates_are_one_horizontal_kernel() {
    let g = mlp_step(&Adam::new(), &[13, 17, 5, 3], 7);
    let opts = LowerOptions {
        fuse_updates: false,
        ..LowerOptions::fused()
    };
    let p = lower(&g, &opts).unwrap();
    let names: Vec<&str> = p.kernels.iter().map(|k| k.name()).collect();
    assert_eq!(p.launches(), 14, "{names:?}");
    let horizontal: Vec<&Kernel> = p
        .kernels
        .iter()
        .filter(|k| k.name().starts_with("horizontal_6x_"))
        .collect();
    let [Kernel::Loop(h)] = horizontal[..] else {
        panic!("{names:?}")
    };
    let total: usize = g
        .sources_of(SourceKind::Param)
        .iter()
        .map(|&id| g.node(id).shape().numel())
        .sum();
    assert_eq!(h.outer, vec![total]);
    // the parameters are views into one arena, in parameter order
    let bases: std::collections::BTreeSet<_> = p
        .buffers
        .iter()
        .filter(|b| matches!(b.role, kiln_compiler::kernel::BufferRole::Param(_)))
        .map(|b| match b.storage {
            kiln_compiler::kernel::Storage::View { base, .. } => base,
            _ => panic!("{p}"),
        })
        .collect();
    assert_eq!(bases.len(), 1, "{p}");
    let r = memory_report(&p);
    assert_eq!((r.in_place_updates, r.copied_updates), (18, 0), "{p}");
}

/// The real pipeline rewrites before lowering: the rewritten step lowers to no more
/// kernels and still trains like the interpreter runs the ORIGINAL graph (rewrites may
/// change rounding, hence the tolerance).
#[test]
fn rewritten_steps_lower_and_match() {
    use kiln_compiler::rewrite::{rewrite, RewriteOptions};
    for opt in [Box::new(Adam::new()) as Box<dyn Optimizer>, Box::new(Vsgd::new())] {
        let g = mlp_step(opt.as_ref(), &[13, 17, 5, 3], 7);
        let (r, _) = rewrite(&g, &RewriteOptions::default());
        let before = lower(&g, &LowerOptions::fused()).unwrap().launches();
        let after = lower(&r, &LowerOptions::fused()).unwrap();
        assert!(
            after.launches() <= before,
            "{}: {} kernels after rewriting, {before} before",
            opt.name(),
            after.launches()
        );
        let mut want = kiln_ir::init::initial_bindings(&g, 3);
        let mut got = want.clone();
        let mut rng = Rng(5);
        for step in 1..=3 {
            let mut batch = batch_bindings(&g, &mut rng, 3);
            for (name, v) in opt.scalars(step).unwrap() {
                let dtype = g.node(g.source(&name).unwrap()).dtype();
                batch.insert(name, Value::scalar(v, dtype));
            }
            want.extend(batch.clone());
            got.extend(batch);
            let eval = evaluate(&g, &want).unwrap();
            let run = eval_program(&after, &got).unwrap();
            apply_updates(&g, &eval, &mut want);
            run.apply_updates(&mut got);
            for (name, v) in &want {
                let d = rel_diff(&got[name].data, &v.data);
                assert!(d <= 1e-9, "{}: step {step}: `{name}` differs by {d}", opt.name());
            }
        }
    }
}
