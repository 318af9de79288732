//! Clear errors instead of crashes: wrong input names, shapes and dtypes at run time,
//! unset or unknown scalars, unknown parameters, and kernel programs the code
//! generator must refuse (possible out-of-bounds accesses, ill-typed or malformed
//! kernels, unsupported dtypes).

mod cpu_util;

use cpu_util::*;
use kiln_compiler::codegen::clif::{ClifOptions, CodegenError};
use kiln_compiler::kernel::{BufferRole, IndexExpr, Inst};
use kiln_ir::{BinaryOp, DType, Shape, Value};
use kiln_runtime::compile::compile_program;
use kiln_runtime::error::RuntimeError;

fn scaled_copy(n: usize) -> kiln_compiler::kernel::Program {
    let k = elementwise_kernel(
        "scale",
        &[n],
        vec![
            (v(0), load(0, var(0))),
            (v(1), Inst::Scalar { slot: 0 }),
            (
                v(2),
                Inst::Binary {
                    op: BinaryOp::Mul,
                    a: v(0),
                    b: v(1),
                },
            ),
            (v(3), load(2, var(0))),
            (
                v(4),
                Inst::Binary {
                    op: BinaryOp::Add,
                    a: v(2),
                    b: v(3),
                },
            ),
        ],
        vec![(1, v(4))],
    );
    program(
        vec![
            input("x", n, DType::F32),
            output("y", n, DType::F32),
            buffer(n, DType::F32, BufferRole::Param("w".into())),
        ],
        vec![("lr", DType::F32)],
        vec![k],
    )
}

#[test]
fn run_time_input_errors_name_the_problem() {
    let mut exe = compile_program(scaled_copy(5), &ClifOptions::default()).unwrap();
    let x = f32_value(vec![1.0; 5]);

    let e = exe.run(&bind(vec![("x", x.clone())])).unwrap_err();
    assert!(matches!(&e, RuntimeError::ScalarUnset { name } if name == "lr"), "{e}");
    assert!(e.to_string().contains("set_scalar(\"lr\""), "{e}");

    exe.set_scalar("lr", 2.0).unwrap();
    let e = exe.run(&bind(vec![("x", x.clone()), ("z", x.clone())])).unwrap_err();
    assert!(
        matches!(&e, RuntimeError::UnknownInput { name, known } if name == "z" && known.contains("x")),
        "{e}"
    );

    let e = exe.run(&bind(vec![])).unwrap_err();
    assert!(
        matches!(&e, RuntimeError::MissingInput { name, .. } if name == "x"),
        "{e}"
    );

    let e = exe.run(&bind(vec![("x", f32_value(vec![1.0; 4]))])).unwrap_err();
    assert!(
        matches!(&e, RuntimeError::InputShape { name, .. } if name == "x"),
        "{e}"
    );

    let e = exe.run(&bind(vec![("x", i32_value(vec![1.0; 5]))])).unwrap_err();
    assert!(
        matches!(&e, RuntimeError::InputDType { name, expected: DType::F32, got: DType::I32 } if name == "x"),
        "{e}"
    );

    let broken = Value {
        shape: Shape::new(vec![5]),
        dtype: DType::F32,
        data: vec![1.0; 3],
    };
    let e = exe.run(&bind(vec![("x", broken)])).unwrap_err();
    assert!(matches!(&e, RuntimeError::InconsistentValue { .. }), "{e}");

    assert!(matches!(
        exe.set_scalar("beta", 1.0),
        Err(RuntimeError::UnknownScalar { .. })
    ));
    assert!(matches!(exe.get("v"), Err(RuntimeError::UnknownPersistent { .. })));
    assert!(matches!(
        exe.set("w", &f32_value(vec![0.0; 6])),
        Err(RuntimeError::PersistentShape {
            expected: 5,
            got: 6,
            ..
        })
    ));

    // Scalars may also come with the inputs; the run then succeeds.
    exe.set("w", &f32_value(vec![0.5; 5])).unwrap();
    let out = exe
        .run(&bind(vec![("x", x), ("lr", Value::scalar(3.0, DType::F32))]))
        .unwrap();
    assert_eq!(out["y"].data, vec![3.5; 5]);
    assert_eq!(exe.scalar("lr"), Some(3.0));
}

#[test]
fn codegen_refuses_unsafe_or_malformed_kernels() {
    let n = 8;
    // Reads x[i + 1]: the last point would read past the end.
    let oob = elementwise_kernel(
        "oob",
        &[n],
        vec![(v(0), load(0, var(0).add(IndexExpr::Const(1))))],
        vec![(1, v(0))],
    );
    let p = program(
        vec![input("x", n, DType::F32), output("y", n, DType::F32)],
        vec![],
        vec![oob],
    );
    let e = compile_program(p, &ClifOptions::default()).unwrap_err();
    assert!(
        matches!(&e, RuntimeError::Codegen(CodegenError::OutOfBounds { kernel, .. }) if kernel == "oob"),
        "{e}"
    );
    assert!(e.to_string().contains("outside 0..8"), "{e}");

    // Uses a value that is never defined.
    let bad = elementwise_kernel(
        "undefined",
        &[n],
        vec![(
            v(1),
            Inst::Binary {
                op: BinaryOp::Add,
                a: v(0),
                b: v(0),
            },
        )],
        vec![(1, v(1))],
    );
    let p = program(
        vec![input("x", n, DType::F32), output("y", n, DType::F32)],
        vec![],
        vec![bad],
    );
    let e = compile_program(p, &ClifOptions::default()).unwrap_err();
    assert!(
        matches!(&e, RuntimeError::Codegen(CodegenError::Malformed { .. })),
        "{e}"
    );

    // Stores an f32 into an i32 buffer.
    let ill = elementwise_kernel("ill_typed", &[n], vec![(v(0), load(0, var(0)))], vec![(1, v(0))]);
    let p = program(
        vec![input("x", n, DType::F32), output("y", n, DType::I32)],
        vec![],
        vec![ill],
    );
    let e = compile_program(p, &ClifOptions::default()).unwrap_err();
    assert!(e.to_string().contains("stores a f32 value"), "{e}");

    // Division by zero in an index, and a loop variable out of scope.
    for (name, index) in [("div0", var(0).div(0)), ("novar", var(3))] {
        let k = elementwise_kernel(name, &[n], vec![(v(0), load(0, index))], vec![(1, v(0))]);
        let p = program(
            vec![input("x", n, DType::F32), output("y", n, DType::F32)],
            vec![],
            vec![k],
        );
        let e = compile_program(p, &ClifOptions::default()).unwrap_err();
        assert!(
            matches!(&e, RuntimeError::Codegen(CodegenError::Malformed { .. })),
            "{name}: {e}"
        );
    }

    // f16 buffers are storage-only and not supported by the CPU backend.
    let k = elementwise_kernel("f16", &[n], vec![(v(0), load(0, var(0)))], vec![(1, v(0))]);
    let p = program(
        vec![input("x", n, DType::F16), output("y", n, DType::F16)],
        vec![],
        vec![k],
    );
    let e = compile_program(p, &ClifOptions::default()).unwrap_err();
    assert!(e.to_string().contains("f16"), "{e}");
}
