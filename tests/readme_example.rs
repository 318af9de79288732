//! The README's DSL example, verbatim, so the documentation cannot drift from the API.

use kiln::prelude::*;

fn readme_example() -> Result<(Graph, usize), Box<dyn std::error::Error>> {
    let b = GraphBuilder::new();
    let x = b.input("x", [128, 784], DType::F32);
    let y = b.input("y", [128], DType::I32);
    let l0 = b.scope("mlp").scope(0); // parameters become mlp.0.weight, ...
    let w0 = l0.param("weight", [784, 256], Init::KaimingUniform { fan_in: 784 });
    let b0 = l0.param("bias", [256], Init::Zeros);
    let l1 = b.scope("mlp").scope(1);
    let w1 = l1.param("weight", [256, 10], Init::KaimingUniform { fan_in: 256 });
    let h = (x.matmul(&w0) + &b0).relu(); // NumPy broadcasting
    let loss = h.matmul(&w1).cross_entropy(&y); // numerically stable
    b.output("loss", &loss);
    let grads = grad_tensors(&loss, &[&w0, &b0, &w1])?; // backward pass, same graph
    let graph = b.finish()?; // the first error, if any
    Ok((graph, grads.len()))
}

#[test]
fn readme_dsl_example_builds() {
    let (graph, n) = readme_example().unwrap();
    assert_eq!(n, 3);
    assert!(graph.source("mlp.0.weight").is_some() && graph.source("mlp.1.weight").is_some());
}

#[test]
fn readme_error_example_names_op_shapes_and_line() {
    let b = GraphBuilder::new();
    let a = b.input("a", [3, 4], DType::F32);
    let w = b.input("w", [5, 6], DType::F32);
    a.matmul(&w);
    let msg = b.finish().unwrap_err().to_string();
    assert!(
        msg.starts_with("matmul: inner dimensions differ: lhs [3, 4] has k=4 but rhs [5, 6] has k=5"),
        "{msg}"
    );
    assert!(msg.contains("readme_example.rs:"), "{msg}");
}
