//! The interpreter's driver: bindings, liveness, requested nodes, updates and errors.

use kiln_ir::init::initial_bindings;
use kiln_ir::interp::{apply_updates, evaluate_nodes};
use kiln_ir::*;

fn vals(shape: impl Into<Shape>, data: &[f64]) -> Value {
    Value::new(shape, DType::F32, data.to_vec()).unwrap()
}

/// y = relu(x @ w + b); loss = mean(y); update w <- w - lr * 1.
fn small_model() -> (Graph, NodeId) {
    let b = GraphBuilder::new();
    let x = b.input("x", [2, 3], DType::F32);
    let w = b.param("w", [3, 2], Init::Zeros);
    let bias = b.param("b", [2], Init::Zeros);
    let lr = b.scalar("lr", DType::F32);
    let y = (x.matmul(&w) + &bias).relu();
    b.output("y", &y);
    b.output("loss", &y.mean_all());
    b.update(&w, &(&w - &lr));
    // A dead branch: never evaluated, so its missing input is not an error.
    let dead = b.input("unused", [4], DType::F32).exp();
    (b.finish().unwrap(), dead.id().unwrap())
}

fn bindings() -> Bindings {
    let mut bd = Bindings::new();
    bd.insert("x".into(), vals([2, 3], &[1.0, 2.0, 3.0, -1.0, 0.0, 1.0]));
    bd.insert("w".into(), vals([3, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, -1.0]));
    bd.insert("b".into(), vals([2], &[0.5, -0.5]));
    bd.insert("lr".into(), Value::scalar(0.25, DType::F32));
    bd
}

#[test]
fn evaluates_outputs_and_applies_updates() {
    let (g, dead) = small_model();
    let mut bd = bindings();
    let ev = evaluate(&g, &bd).unwrap();
    // x@w = [[4, -1], [0, -1]]; +b = [[4.5, -1.5], [0.5, -1.5]]; relu.
    assert_eq!(ev.output(&g, "y").unwrap(), &vals([2, 2], &[4.5, 0.0, 0.5, 0.0]));
    assert_eq!(ev.output(&g, "loss").unwrap().item(), Some(1.25));
    assert!(ev.value(dead).is_none(), "dead nodes are not evaluated");
    assert!(ev.output(&g, "nope").is_none());
    assert_eq!(ev.updated(&g, "w").unwrap().data[0], 0.75);
    apply_updates(&g, &ev, &mut bd);
    assert_eq!(bd["w"], vals([3, 2], &[0.75, -0.25, -0.25, 0.75, 0.75, -1.25]));
    assert_eq!(
        bd["b"],
        vals([2], &[0.5, -0.5]),
        "params without updates keep their value"
    );
}

#[test]
fn evaluate_nodes_computes_only_what_is_requested() {
    let (g, dead) = small_model();
    let mut bd = Bindings::new();
    bd.insert("unused".into(), vals([4], &[0.0, 1.0, -1.0, 2.0]));
    let out = evaluate_nodes(&g, &bd, &[dead, dead]).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].data, vec![1.0, 1.0f64.exp(), (-1.0f64).exp(), 2.0f64.exp()]);
    assert_eq!(out[0], out[1]);
    let err = evaluate_nodes(&g, &bd, &[NodeId(10_000)]).unwrap_err();
    assert_eq!(err, IrError::UnknownNode(10_000));
}

#[test]
fn missing_binding_names_kind_shape_and_dtype() {
    let (g, _) = small_model();
    let mut bd = bindings();
    bd.remove("b");
    let err = evaluate(&g, &bd).unwrap_err();
    assert_eq!(
        err,
        IrError::MissingBinding {
            kind: "param",
            name: "b".into(),
            shape: Shape::from([2]),
            dtype: DType::F32
        }
    );
    let msg = err.to_string();
    assert!(msg.contains("param `b`") && msg.contains("[2]"), "{msg}");
}

#[test]
fn wrong_shape_or_dtype_bindings_are_rejected() {
    let (g, _) = small_model();
    let mut bd = bindings();
    bd.insert("x".into(), vals([3, 2], &[0.0; 6]));
    assert_eq!(
        evaluate(&g, &bd).unwrap_err(),
        IrError::BindingShape {
            name: "x".into(),
            expected: Shape::from([2, 3]),
            got: Shape::from([3, 2])
        }
    );
    let mut bd = bindings();
    bd.insert("lr".into(), Value::scalar(1.0, DType::I32));
    let err = evaluate(&g, &bd).unwrap_err();
    assert!(matches!(err, IrError::DType { got: DType::I32, .. }), "{err}");
    assert!(err.to_string().contains("`lr`"), "{err}");
    // A value whose public fields were made inconsistent is an error, not a panic.
    let mut bd = bindings();
    bd.get_mut("x").unwrap().data.pop();
    assert!(matches!(evaluate(&g, &bd).unwrap_err(), IrError::Invalid { .. }));
}

#[test]
fn initial_bindings_cover_params_and_state() {
    let b = GraphBuilder::new();
    let w = b.param("w", [4, 5], Init::KaimingUniform { fan_in: 4 });
    let m = b.state("m", [4, 5], Init::Constant(0.5));
    b.update(&w, &(&w + &m));
    let g = b.finish().unwrap();
    let bd = initial_bindings(&g, 3);
    assert_eq!(bd.len(), 2);
    assert_eq!(bd["m"].data, vec![0.5; 20]);
    assert!(bd["w"].data.iter().all(|x| x.abs() <= 0.5) && bd["w"].data.iter().any(|&x| x != 0.0));
    let ev = evaluate(&g, &bd).unwrap();
    let new_w = ev.updated(&g, "w").unwrap();
    for (n, o) in new_w.data.iter().zip(&bd["w"].data) {
        assert_eq!(*n, o + 0.5);
    }
}
