//! Pinned CUDA C of a few small kernels (compiler/tests/snapshots/cuda/*.cu), one per
//! code path: float4 elementwise, scalar elementwise with guards and floor division,
//! Philox, warp and block reductions with argmax, the tiled matmul with its epilogue,
//! and the prelude. A change to the generator shows up as a diff of these files;
//! review it, then regenerate with `KILN_BLESS=1 cargo test -p kiln-compiler --test
//! cuda_snapshots`.

mod cuda_common;

use std::path::PathBuf;

use kiln_compiler::codegen::cuda::{prelude, render_program, CudaOptions};
use kiln_compiler::kernel::Program;

use cuda_common::programs;

fn snapshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/cuda")
}

fn render(p: &Program) -> String {
    let cp = render_program(p, &CudaOptions::default()).expect("codegen");
    let mut s = String::from("// launch table:\n");
    for line in cp.launch_table().lines() {
        s.push_str(&format!("//   {line}\n"));
    }
    for k in &cp.kernels {
        s.push('\n');
        s.push_str(&k.source);
    }
    s
}

/// Compare `text` with the pinned file `name` (or write it under KILN_BLESS=1).
fn check(name: &str, text: &str) -> Option<String> {
    let path = snapshot_dir().join(name);
    if std::env::var_os("KILN_BLESS").is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::create_dir_all(snapshot_dir()).unwrap();
        std::fs::write(&path, text).unwrap();
        return None;
    }
    let Ok(pinned) = std::fs::read_to_string(&path) else {
        return Some(format!(
            "{name}: no snapshot at {} (run with KILN_BLESS=1 to create it)",
            path.display()
        ));
    };
    if pinned == text {
        return None;
    }
    let (line, (want, got)) = pinned
        .lines()
        .chain(std::iter::repeat(""))
        .zip(text.lines().chain(std::iter::repeat("")))
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .unwrap_or((0, ("", "")));
    Some(format!(
        "{name}: generated CUDA differs from the snapshot at line {}:\n  pinned:    {want}\n  generated: {got}\n\
         (review the change; KILN_BLESS=1 regenerates the snapshots)",
        line + 1
    ))
}

#[test]
fn generated_cuda_matches_the_pinned_snapshots() {
    let cases: Vec<(&str, String)> = vec![
        ("prelude.cu", prelude()),
        ("elementwise_float4_adam.cu", render(&programs::adam_like(16).0)),
        (
            "elementwise_scalar_pad_gather.cu",
            render(&programs::pad_gather(1, 2, 3).0),
        ),
        ("elementwise_philox_dropout.cu", render(&programs::dropout(9).0)),
        ("reduction_softmax_warp.cu", render(&programs::softmax(4, 40).0)),
        (
            "reduction_column_and_argmax_block.cu",
            render(&programs::column_and_argmax(3, 1100).0),
        ),
        ("reduction_cross_entropy.cu", render(&programs::cross_entropy(6, 5).0)),
        (
            "matmul_bias_relu_epilogue.cu",
            render(&programs::matmul_bias_relu(8, 8, 8).0),
        ),
    ];
    let failures: Vec<String> = cases.iter().filter_map(|(n, t)| check(n, t)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn rendering_is_deterministic() {
    let (p, _) = programs::cross_entropy(9, 11);
    assert_eq!(render(&p), render(&p));
}
