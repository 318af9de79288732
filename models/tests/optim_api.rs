//! The optimizer API contract: construction by name, hyperparameter validation and its
//! messages, state naming, runtime scalars matching the graph exactly, structural vs
//! runtime hyperparameters, and every class of bad `optim replay` trace.

use kiln_ir::{DType, GraphBuilder, Init, SourceKind, Value};
use kiln_models::optim::{
    build_phase, by_name, grad_inputs, replay, steps_to_json, Interpreter, NoiseSource, OptimError, Optimizer,
    ParamRef, Phase, ReplayError, Replayer, Trace, OPTIMIZERS,
};
use serde_json::json;

fn ready(name: &str) -> Box<dyn Optimizer> {
    let mut o = by_name(name).unwrap();
    if name.starts_with("ivon") {
        o.set("lr", 0.1).unwrap();
        o.set("ess", 100.0).unwrap();
    }
    o
}

#[test]
fn every_name_constructs_and_unknown_names_list_the_valid_ones() {
    for name in OPTIMIZERS {
        assert_eq!(by_name(name).unwrap().name(), *name);
    }
    let e = by_name("adamax").err().unwrap().to_string();
    assert!(e.contains("adamax") && e.contains(&OPTIMIZERS.join(", ")), "{e}");
}

#[test]
fn reference_defaults() {
    let v = by_name("vsgd").unwrap();
    for (k, want) in [
        ("lr", 0.1),
        ("kg", 30.0),
        ("gamma", 1e-8),
        ("kappa1", 0.81),
        ("kappa2", 0.9),
        ("eps", 1e-8),
        ("weight_decay", 0.0),
    ] {
        assert_eq!(v.get(k).unwrap(), want, "vsgd {k}");
    }
    let i = by_name("ivon").unwrap();
    assert_eq!(i.get("beta2").unwrap(), 0.99999);
    assert_eq!(i.get("clip_radius").unwrap(), f64::INFINITY);
    assert!(matches!(i.get("ess"), Err(OptimError::MissingHyper { .. })));
    assert_eq!(by_name("adamw").unwrap().get("weight_decay").unwrap(), 0.01);
    assert_eq!(by_name("adam").unwrap().get("weight_decay").unwrap(), 0.0);
}

#[test]
fn hyperparameter_validation() {
    let mut v = by_name("vsgd").unwrap();
    let e = v.set("lr", -0.1).unwrap_err().to_string();
    assert!(e.contains("`lr` = -0.1") && e.contains(">= 0"), "{e}");
    for bad in [0.5, 1.2, 0.0, f64::NAN] {
        let e = v.set("kappa1", bad).unwrap_err().to_string();
        assert!(e.contains("(0.5, 1]"), "{e}");
    }
    v.set("kappa1", 1.0).unwrap();
    let e = v.set("beta1", 0.9).unwrap_err().to_string();
    assert!(
        e.contains("vsgd has no hyperparameter `beta1`")
            && e.contains("lr, kg, gamma, kappa1, kappa2, eps, weight_decay"),
        "{e}"
    );
    assert!(v.set("gamma", 0.0).is_err());
    assert!(v.set("lr", f64::INFINITY).is_err());
    v.hyper_mut().set_str("kg=20").unwrap();
    assert_eq!(v.get("kg").unwrap(), 20.0);
    let e = v.hyper_mut().set_str("kg:20").unwrap_err().to_string();
    assert!(e.contains("name=value"), "{e}");

    let mut a = by_name("adam").unwrap();
    assert!(a.set("beta2", 1.0).is_err());
    let mut i = by_name("ivon").unwrap();
    assert!(i.set("mc_samples", 0.0).is_err());
    assert!(i.set("mc_samples", 1.5).is_err());
    assert!(i.set("mc_samples", 33.0).is_err());
    assert!(i.set("seed", 0.5).is_err());
    i.set("clip_radius", f64::INFINITY).unwrap();
    assert!(by_name("svrg").unwrap().set("alpha", 1.5).is_err());
    assert!(by_name("sgd").unwrap().set("nesterov", 0.5).is_err());
}

#[test]
fn missing_and_inconsistent_hyperparameters_are_build_errors() {
    let b = GraphBuilder::new();
    let w = b.param("w", [4], Init::Zeros);
    let refs = ParamRef::collect("test", std::slice::from_ref(&w)).unwrap();
    let mut grads = |p: &kiln_models::optim::EvalPoint| grad_inputs(&b, &refs, p);
    let ivon = by_name("ivon").unwrap();
    let e = build_phase(ivon.as_ref(), Phase::Step, &b, std::slice::from_ref(&w), &mut grads)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`lr`") && e.contains("--set lr="), "{e}");
    assert!(ivon.scalars(1).is_err());

    let mut sgd = by_name("sgd").unwrap();
    sgd.set("nesterov", 1.0).unwrap();
    let e = build_phase(sgd.as_ref(), Phase::Step, &b, std::slice::from_ref(&w), &mut grads)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nesterov needs momentum > 0"), "{e}");

    let adam = by_name("adam").unwrap();
    let e = build_phase(adam.as_ref(), Phase::Refresh, &b, std::slice::from_ref(&w), &mut grads)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no refresh phase"), "{e}");
    assert!(adam.scalars(0).unwrap_err().to_string().contains("steps count from 1"));
    let svrg = by_name("svrg").unwrap();
    assert!(svrg.refresh_scalars(0, true, -1.0).is_err());
    assert!(svrg.refresh_scalars(0, true, f64::NAN).is_err());
}

#[test]
fn only_params_can_be_optimized_once() {
    let b = GraphBuilder::new();
    let w = b.param("w", [2], Init::Zeros);
    let x = b.input("x", [2], DType::F32);
    let e = ParamRef::collect("sgd", &[x]).unwrap_err().to_string();
    assert!(e.contains("`input` node, not a param"), "{e}");
    let e = ParamRef::collect("sgd", &[w.clone(), w]).unwrap_err().to_string();
    assert!(e.contains("listed twice"), "{e}");
}

#[test]
fn a_conflicting_source_name_is_reported() {
    let b = GraphBuilder::new();
    let w = b.param("w", [2], Init::Zeros);
    b.input("optim.lr", [2], DType::F32);
    let refs = ParamRef::collect("sgd", std::slice::from_ref(&w)).unwrap();
    let sgd = by_name("sgd").unwrap();
    let e = build_phase(sgd.as_ref(), Phase::Step, &b, &[w], &mut |p| grad_inputs(&b, &refs, p))
        .unwrap_err()
        .to_string();
    assert!(e.contains("already has a source `optim.lr` (input"), "{e}");
}

#[test]
fn state_names_are_hierarchical_checkpoint_keys_even_in_a_scope() {
    let b = GraphBuilder::new();
    let scoped = b.scope("mlp").scope(0);
    let w = scoped.param("weight", [3, 2], Init::Zeros);
    let refs = ParamRef::collect("vsgd", std::slice::from_ref(&w)).unwrap();
    assert_eq!(refs[0].name, "mlp.0.weight");
    let vsgd = by_name("vsgd").unwrap();
    build_phase(vsgd.as_ref(), Phase::Step, &scoped, &[w], &mut |p| {
        grad_inputs(&b, &refs, p)
    })
    .unwrap();
    let g = b.finish().unwrap();
    let mut states: Vec<String> = g
        .sources_of(SourceKind::State)
        .into_iter()
        .map(|id| g.node(id).op.source_name().unwrap().to_string())
        .collect();
    states.sort();
    assert_eq!(
        states,
        ["mlp.0.weight.vsgd.bg", "mlp.0.weight.vsgd.bh", "mlp.0.weight.vsgd.mu"]
    );
    assert!(g.source("grad.mlp.0.weight").is_some());
    assert_eq!(g.updates().len(), 4);
}

fn declared_scalars(g: &kiln_ir::Graph) -> Vec<String> {
    let mut v: Vec<String> = g
        .sources_of(SourceKind::Scalar)
        .into_iter()
        .map(|id| g.node(id).op.source_name().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn host_scalars_are_exactly_the_graphs_runtime_scalars() {
    let params = [
        ("a.w".to_string(), Value::zeros([3, 5], DType::F32)),
        ("a.b".to_string(), Value::zeros([5], DType::F32)),
    ];
    let configs: Vec<(&str, Vec<(&str, f64)>)> = vec![
        ("sgd", vec![]),
        ("sgd", vec![("momentum", 0.9)]),
        ("sgd", vec![("momentum", 0.9), ("nesterov", 1.0)]),
        ("adam", vec![]),
        ("adamw", vec![]),
        ("vsgd", vec![]),
        ("constant-vsgd", vec![]),
        ("ivon", vec![("mc_samples", 3.0)]),
        ("svrg", vec![("momentum", 0.5)]),
        ("ivon-poco", vec![("shared_noise", 1.0), ("prox", 0.0)]),
    ];
    for (name, hyper) in configs {
        for injected in [false, true] {
            let mut o = ready(name);
            for (k, v) in &hyper {
                o.set(k, *v).unwrap();
            }
            if injected && o.set_noise_source(NoiseSource::Input).is_err() {
                continue;
            }
            let mut exec = Interpreter;
            let r = Replayer::new(o, &params, &mut exec).unwrap();
            let mut host: Vec<String> = r.optimizer().scalars(3).unwrap().into_iter().map(|(n, _)| n).collect();
            host.sort();
            assert_eq!(
                host,
                declared_scalars(r.graph(Phase::Step).unwrap()),
                "{name} {hyper:?} step"
            );
            if let Some(g) = r.graph(Phase::Refresh) {
                let mut host: Vec<String> = r
                    .optimizer()
                    .refresh_scalars(4, false, 0.5)
                    .unwrap()
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect();
                host.sort();
                assert_eq!(host, declared_scalars(g), "{name} {hyper:?} refresh");
            }
        }
    }
}

#[test]
fn runtime_hyperparameters_never_change_the_graph_structural_ones_do() {
    let params = [("w".to_string(), Value::zeros([4], DType::F32))];
    let hash = |o: Box<dyn Optimizer>| {
        let mut exec = Interpreter;
        let r = Replayer::new(o, &params, &mut exec).unwrap();
        r.graph(Phase::Step).unwrap().structural_hash()
    };
    for name in OPTIMIZERS {
        let base = hash(ready(name));
        let mut o = ready(name);
        for (k, _) in o.hyper().values() {
            let spec = o.hyper().specs().iter().find(|s| s.name == k).unwrap();
            // hess_init is also the initial value of the state (an init, not the graph).
            if spec.structural || k == "momentum" || k == "hess_init" {
                continue;
            }
            let cur = o.get(k).unwrap();
            let new = if cur == 0.0 { 1.0 } else { (cur * 0.5).clamp(0.51, 0.99) };
            if spec.rule.accepts(new) {
                o.set(k, new).unwrap();
            }
        }
        assert_eq!(hash(o), base, "{name}: a runtime hyperparameter changed the graph");
    }
    let mut k2 = ready("ivon");
    k2.set("mc_samples", 2.0).unwrap();
    assert_ne!(hash(k2), hash(ready("ivon")));

    let mut exec = Interpreter;
    let mut r = Replayer::new(ready("ivon"), &params, &mut exec).unwrap();
    r.set_hyper("lr", 0.5).unwrap();
    let e = r.set_hyper("mc_samples", 2.0).unwrap_err().to_string();
    assert!(e.contains("structural"), "{e}");
    assert_eq!(
        r.optimizer().get("mc_samples").unwrap(),
        1.0,
        "a refused change is rolled back"
    );
}

// ------------------------------------------------------------------ replay traces

fn trace_err(t: serde_json::Value) -> String {
    match Trace::parse(&t.to_string()).and_then(|tr| replay(&tr, &[], &mut Interpreter)) {
        Ok(_) => panic!("trace accepted: {t}"),
        Err(e) => e.to_string(),
    }
}

fn good() -> serde_json::Value {
    json!({
        "optimizer": "adam",
        "hyper": {"lr": 0.01},
        "params": {"layer.weight": {"shape": [2, 3], "data": [1, 2, 3, 4, 5, 6]}},
        "grads": [{"layer.weight": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}],
    })
}

fn with(mut base: serde_json::Value, key: &str, v: serde_json::Value) -> serde_json::Value {
    base[key] = v;
    base
}

#[test]
fn a_good_trace_replays_and_prints() {
    let steps = replay(&Trace::parse(&good().to_string()).unwrap(), &[], &mut Interpreter).unwrap();
    let out: serde_json::Value = serde_json::from_str(&steps_to_json(&steps)).unwrap();
    let w = out["steps"][0]["layer.weight"].as_array().unwrap();
    assert_eq!(w.len(), 6);
    // Adam's first step moves every coordinate by about lr against the gradient's sign.
    assert!((w[0].as_f64().unwrap() - 0.99).abs() < 1e-6);
}

#[test]
fn bad_traces_are_clear_errors() {
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (
            with(good(), "optimizer", json!("adamax")),
            "valid optimizers: sgd, adam",
        ),
        (
            with(good(), "hyper", json!({"learning_rate": 1})),
            "valid names: lr, beta1",
        ),
        (with(good(), "hyper", json!({"lr": -1})), "`lr` = -1 is invalid"),
        (with(good(), "hyper", json!({"lr": "fast"})), "hyper[\"lr\"]"),
        (
            with(
                good(),
                "params",
                json!({"layer.weight": {"shape": [2, 3], "data": [1, 2, 3]}}),
            ),
            "3 numbers given, but shape [2, 3] holds 6",
        ),
        (
            with(good(), "grads", json!([{"layer.weight": [1, 2]}])),
            "grads[0][\"layer.weight\"]: 2 numbers given, but the tensor has shape [2, 3]",
        ),
        (
            with(
                good(),
                "grads",
                json!([{"layer.weight": [1, 2, 3, 4, 5, 6], "bias": [1]}]),
            ),
            "grads[0][\"bias\"]: not expected here; valid keys: layer.weight",
        ),
        (with(good(), "grads", json!([{}])), "grads[0]: missing `layer.weight`"),
        (
            with(good(), "grads", json!([{"layer.weight": [1, 2, "x", 4, 5, 6]}])),
            "grads[0][\"layer.weight\"][2]: expected a number",
        ),
        (
            with(good(), "noise", json!([{"layer.weight": [0, 0, 0, 0, 0, 0]}])),
            "adam draws no random numbers",
        ),
        (with(good(), "extra", json!(1)), "unknown key `extra`"),
        (
            with(
                good(),
                "refresh",
                json!([{"before_step": 0, "batches": [{"grads": {}}]}]),
            ),
            "adam has no refresh phase",
        ),
        (with(good(), "start_step", json!(0)), "start_step"),
        (
            with(
                good(),
                "state",
                json!({"layer.weight.adam.x": {"shape": [2, 3], "data": [0, 0, 0, 0, 0, 0]}}),
            ),
            "no such state tensor; valid names: layer.weight.adam.m, layer.weight.adam.v",
        ),
    ];
    for (t, want) in cases {
        let e = trace_err(t.clone());
        assert!(
            e.contains(want),
            "trace {t}\n  error: {e}\n  expected to contain: {want}"
        );
    }
}

#[test]
fn nan_and_syntax_errors() {
    let text = good().to_string().replace("0.1", "NaN");
    let e = Trace::parse(&text).unwrap_err().to_string();
    assert!(e.contains("NaN or Infinity"), "{e}");
    let text = good().to_string().replace("0.1", "-Infinity");
    assert!(Trace::parse(&text).unwrap_err().to_string().contains("NaN or Infinity"));
    let e = Trace::parse("{\"optimizer\": ").unwrap_err();
    assert!(matches!(e, ReplayError::Json(_)), "{e}");
    assert!(Trace::parse("[1]")
        .unwrap_err()
        .to_string()
        .contains("expected a JSON object"));
}

#[test]
fn noise_and_refresh_requirements() {
    let ivon = json!({
        "optimizer": "ivon",
        "hyper": {"lr": 0.1, "ess": 10},
        "params": {"w": {"shape": [2], "data": [1, 2]}},
        "grads": [{"w": [0.1, 0.2]}, {"w": [0.3, 0.4]}],
    });
    // Without noise, IVON draws Philox noise; with it, the noise must match.
    assert_eq!(
        replay(&Trace::parse(&ivon.to_string()).unwrap(), &[], &mut Interpreter)
            .unwrap()
            .len(),
        2
    );
    let e = trace_err(with(ivon.clone(), "noise", json!([{"w": [0, 0]}])));
    assert!(e.contains("1 noise objects for 2 steps"), "{e}");
    let e = trace_err(with(ivon.clone(), "noise", json!([{"w": [0, 0]}, {"w": [0]}])));
    assert!(e.contains("noise[1][\"w\"]: 1 numbers given"), "{e}");
    let mut missing_ess = ivon.clone();
    missing_ess["hyper"] = json!({"lr": 0.1});
    assert!(trace_err(missing_ess).contains("`ess`"));

    let svrg = json!({
        "optimizer": "svrg",
        "params": {"w": {"shape": [2], "data": [1, 2]}},
        "grads": [{"w": [0.1, 0.2], "w@snapshot": [0.1, 0.2]}],
    });
    assert!(trace_err(svrg.clone()).contains("needs a refresh before step 0"));
    let ok = with(
        svrg.clone(),
        "refresh",
        json!([{"before_step": 0, "batches": [{"grads": {"w": [1, 1]}, "weight": 0.5}, {"grads": {"w": [3, 3]}}]}]),
    );
    let steps = replay(&Trace::parse(&ok.to_string()).unwrap(), &[], &mut Interpreter).unwrap();
    // μ̃ = 0.5·1 + 0.5·3 = 2 (the second batch's default weight is 1/2); θ̃ = θ, so
    // v = g − (g − μ̃) = μ̃ and θ moves by −lr·2.
    assert!((steps[0]["w"][0] - (1.0 - 1e-3 * 2.0)).abs() < 1e-15);
    let e = trace_err(with(
        svrg.clone(),
        "refresh",
        json!([{"before_step": 5, "batches": [{"grads": {"w": [1, 1]}}]}]),
    ));
    assert!(e.contains("refresh before step 5 but the trace has 1 steps"), "{e}");
    let e = trace_err(with(svrg, "refresh", json!([{"before_step": 0, "batches": []}])));
    assert!(e.contains("at least one micro-batch"), "{e}");
}
