//! One gradcheck per differentiable op of the IR, with odd shapes and broadcasting;
//! plus the documented zero-gradient decisions for non-differentiable ops.

use kiln_ir::{DType, Distribution, GraphBuilder, Tensor, Value, Window2d};

use crate::gradcheck::{bindings_for, check, probe_loss, Report};

/// Build `out = f(builder)` from f32 inputs, take `sum(out * probe)` and gradcheck it
/// w.r.t. every input `f` returned. Inputs are random with |x| in [0.1, 1].
fn op_check(seed: u64, f: impl FnOnce(&GraphBuilder) -> (Tensor, Vec<Tensor>)) -> Report {
    let b = GraphBuilder::new();
    let (out, wrt) = f(&b);
    let loss = probe_loss(&out);
    let bind = bindings_for(&loss, seed);
    let refs: Vec<&Tensor> = wrt.iter().collect();
    let rep = check(&loss, &refs, &bind);
    assert!(rep.elements > 0);
    rep
}

fn x(b: &GraphBuilder, name: &str, shape: &[usize]) -> Tensor {
    b.input(name, shape.to_vec(), DType::F32)
}

#[test]
fn unary_ops() {
    type F = fn(&Tensor) -> Tensor;
    // Domain-safe forms: log/sqrt/rsqrt see positive inputs, recip sees |x| >= 0.1.
    let cases: [(&str, F); 13] = [
        ("neg", |t| t.neg()),
        ("exp", |t| t.exp()),
        ("log", |t| t.abs().log()),
        ("sqrt", |t| t.abs().sqrt()),
        ("rsqrt", |t| t.abs().rsqrt()),
        ("recip", |t| t.recip()),
        ("abs", |t| t.abs()),
        ("sign", |t| t.sign() * t),
        ("tanh", |t| t.tanh()),
        ("sigmoid", |t| t.sigmoid()),
        ("relu", |t| t.relu()),
        ("sin", |t| t.sin()),
        ("cos", |t| t.cos()),
    ];
    for (k, (name, f)) in cases.iter().enumerate() {
        for shape in [&[][..], &[1][..], &[3, 5][..], &[2, 1, 3][..]] {
            eprintln!("unary {name} {shape:?}");
            op_check(k as u64 * 31 + shape.len() as u64, |b| {
                let a = x(b, "a", shape);
                (f(&a), vec![a])
            });
        }
    }
}

#[test]
fn unary_of_large_and_small_outputs_use_stable_forms() {
    // tanh/sigmoid saturate at |x| = 20; their gradients must be tiny and finite.
    let b = GraphBuilder::new();
    let a = x(&b, "a", &[4]);
    let loss = (a.tanh() + &a.sigmoid()).sum_all();
    let g = kiln_compiler::autodiff::grad_tensors(&loss, &[&a]).unwrap();
    let graph = b.finish().unwrap();
    let mut bind = kiln_ir::Bindings::new();
    bind.insert(
        "a".into(),
        Value::new([4], DType::F32, vec![-20.0, 20.0, 0.0, 1.0]).unwrap(),
    );
    let v = crate::gradcheck::eval1(&graph, &bind, g[0].id().unwrap());
    for (i, &xv) in [-20.0f64, 20.0, 0.0, 1.0].iter().enumerate() {
        let s = 1.0 / (1.0 + (-xv).exp());
        let want = 1.0 - xv.tanh().powi(2) + s * (1.0 - s);
        assert!(
            (v.data[i] - want).abs() <= 1e-15 + 1e-12 * want.abs(),
            "x={xv}: {} vs {want}",
            v.data[i]
        );
    }
}

#[test]
fn binary_ops_with_broadcasting() {
    type F = fn(&Tensor, &Tensor) -> Tensor;
    let cases: [(&str, F); 6] = [
        ("add", |a, b| a + b),
        ("sub", |a, b| a - b),
        ("mul", |a, b| a * b),
        ("div", |a, b| a / b),
        ("max", |a, b| a.maximum(b)),
        ("min", |a, b| a.minimum(b)),
    ];
    let shapes: [(&[usize], &[usize]); 6] = [
        (&[3, 5], &[3, 5]),
        (&[3, 1, 5], &[4, 1]),
        (&[], &[2, 3]),
        (&[7], &[1]),
        (&[1, 3], &[2, 1]),
        (&[2, 3, 4], &[4]),
    ];
    for (k, (name, f)) in cases.iter().enumerate() {
        for (j, (sa, sb)) in shapes.iter().enumerate() {
            eprintln!("binary {name} {sa:?} {sb:?}");
            op_check((k * 10 + j) as u64, |b| {
                let (p, q) = (x(b, "p", sa), x(b, "q", sb));
                (f(&p, &q), vec![p, q])
            });
        }
    }
}

#[test]
fn an_operand_used_twice_accumulates() {
    op_check(3, |b| {
        let a = x(b, "a", &[3, 4]);
        let y = &a * &a + &a.maximum(&a) - &(&a / &a.exp()) + &a.sin().mul(&a);
        (y, vec![a])
    });
}

#[test]
fn pow_const() {
    for (k, e) in [0.0, 1.0, 2.0, 3.0, 0.5, -1.5, 2.7].into_iter().enumerate() {
        op_check(k as u64, |b| {
            let a = x(b, "a", &[3, 5]);
            (a.abs().powf(e), vec![a])
        });
    }
    // Integer exponents on negative bases.
    op_check(99, |b| {
        let a = x(b, "a", &[17]);
        (a.powf(3.0) + &a.powf(2.0), vec![a])
    });
}

#[test]
fn select_sends_the_gradient_to_the_taken_branch() {
    op_check(5, |b| {
        let (c, t, f) = (x(b, "c", &[3, 4]), x(b, "t", &[3, 4]), x(b, "f", &[4]));
        (c.gt(0.0).select(&t, &f), vec![c, t, f])
    });
    // Broadcast condition and a scalar branch.
    op_check(6, |b| {
        let (c, t, f) = (x(b, "c", &[1, 4]), x(b, "t", &[3, 4]), x(b, "f", &[]));
        (c.lt(&f).select(&t, &(&f * 2.0)), vec![c, t, f])
    });
}

#[test]
fn casts() {
    // f32 -> f16 -> f32 (storage round trip, exact in the f64 interpreter): straight through.
    op_check(7, |b| {
        let a = x(b, "a", &[2, 3]);
        (a.cast(DType::F16).cast(DType::F32) * &a, vec![a])
    });
    // Through an integer: piecewise constant, zero gradient on that path.
    let rep = op_check(8, |b| {
        let a = x(b, "a", &[2, 3]);
        (
            (&a * 5.0).cast(DType::I32).cast(DType::F32) + &a.gt(0.0).cast(DType::F32) + &a,
            vec![a],
        )
    });
    assert!(rep.elements == 6);
}

#[test]
fn reductions_with_and_without_keepdims() {
    use kiln_ir::ReduceOp;
    let shapes: [&[usize]; 3] = [&[3, 4, 5], &[1, 3, 1], &[7]];
    for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
        for (j, shape) in shapes.iter().enumerate() {
            let r = shape.len();
            let mut axes_sets: Vec<Vec<usize>> = (0..r).map(|a| vec![a]).collect();
            axes_sets.push((0..r).collect());
            if r == 3 {
                axes_sets.push(vec![0, 2]);
            }
            for axes in &axes_sets {
                for keepdims in [false, true] {
                    op_check(j as u64 + 17 * axes.len() as u64, |b| {
                        let a = x(b, "a", shape);
                        let y = match op {
                            ReduceOp::Sum => a.sum(axes, keepdims),
                            ReduceOp::Mean => a.mean(axes, keepdims),
                            ReduceOp::Max => a.max(axes, keepdims),
                            ReduceOp::Min => a.min(axes, keepdims),
                        };
                        (y, vec![a])
                    });
                }
            }
        }
    }
}

/// Evaluate the gradient of `loss` w.r.t. input `a` bound to `data`.
fn grad_at(b: &GraphBuilder, loss: &Tensor, a: &Tensor, shape: &[usize], data: Vec<f64>) -> Vec<f64> {
    let g = kiln_compiler::autodiff::grad_tensors(loss, &[a]).unwrap();
    let graph = b.finish().unwrap();
    let mut bind = kiln_ir::Bindings::new();
    bind.insert("a".into(), Value::new(shape.to_vec(), DType::F32, data).unwrap());
    crate::gradcheck::eval1(&graph, &bind, g[0].id().unwrap()).data
}

#[test]
fn max_and_min_ties_split_the_gradient_equally() {
    // Reduce max over the last axis: row 0 has a 2-way tie, row 1 a 3-way tie.
    let b = GraphBuilder::new();
    let a = x(&b, "a", &[2, 4]);
    let loss = a.max(&[1], false).sum_all();
    let g = grad_at(&b, &loss, &a, &[2, 4], vec![1.0, 3.0, 3.0, 2.0, 5.0, 5.0, 0.0, 5.0]);
    let third = 1.0 / 3.0;
    assert_eq!(g, vec![0.0, 0.5, 0.5, 0.0, third, third, 0.0, third]);

    // Reduce min, keepdims, all axes.
    let b = GraphBuilder::new();
    let a = x(&b, "a", &[2, 2]);
    let loss = (a.min(&[0, 1], true) * 4.0).sum_all();
    let g = grad_at(&b, &loss, &a, &[2, 2], vec![-1.0, 2.0, -1.0, -1.0]);
    assert_eq!(g, vec![4.0 / 3.0, 0.0, 4.0 / 3.0, 4.0 / 3.0]);

    // Binary max/min: each operand gets half on a tie.
    let b = GraphBuilder::new();
    let a = x(&b, "a", &[3]);
    let c = b.full(2.0, [3], DType::F32);
    let loss = (a.maximum(&c) + &(a.minimum(&c) * 10.0)).sum_all();
    let g = grad_at(&b, &loss, &a, &[3], vec![1.0, 2.0, 3.0]);
    assert_eq!(g, vec![10.0, 5.5, 1.0]);

    // A structural tie (max over a broadcast value) agrees with finite differences.
    op_check(12, |b| {
        let a = x(b, "a", &[3, 1]);
        (
            a.broadcast_to([3, 4]).max(&[1], false) + &a.maximum(&a).reshape([3]),
            vec![a],
        )
    });
}

#[test]
fn movement_ops() {
    op_check(20, |b| {
        let a = x(b, "a", &[3, 4]);
        (a.reshape([2, 6]).reshape([12, 1]), vec![a])
    });
    op_check(21, |b| {
        let a = x(b, "a", &[3, 1]);
        let c = x(b, "c", &[]);
        (a.broadcast_to([2, 3, 5]) + &c.broadcast_to([2, 3, 5]), vec![a, c])
    });
    op_check(22, |b| {
        let a = x(b, "a", &[2, 3, 4]);
        (a.permute(&[2, 0, 1]), vec![a])
    });
    op_check(23, |b| {
        let a = x(b, "a", &[3, 5]);
        (a.pad(&[1, 0], &[2, 3], 7.5), vec![a])
    });
    op_check(24, |b| {
        let (p, q, r) = (x(b, "p", &[2, 1, 3]), x(b, "q", &[2, 4, 3]), x(b, "r", &[2, 2, 3]));
        let konst = b.full(1.0, [2, 3, 3], DType::F32);
        (p.concat(&[&q, &konst, &r], 1), vec![p, q, r])
    });
}

#[test]
fn slices_with_steps_scatter_back() {
    type SliceCase<'a> = (&'a [usize], &'a [usize], &'a [usize], &'a [usize]);
    let cases: [SliceCase; 6] = [
        (&[7], &[1], &[6], &[1]),
        (&[7], &[0], &[7], &[2]),
        (&[9], &[2], &[8], &[3]),
        (&[17], &[3], &[17], &[5]),
        (&[5, 6, 4], &[1, 0, 1], &[5, 5, 2], &[2, 3, 1]),
        (&[4, 7], &[3, 2], &[4, 3], &[4, 4]),
    ];
    for (k, (shape, starts, ends, steps)) in cases.iter().enumerate() {
        op_check(30 + k as u64, |b| {
            let a = x(b, "a", shape);
            (a.slice(starts, ends, steps), vec![a])
        });
    }
    // An empty slice: zero gradient of the input's shape.
    let b = GraphBuilder::new();
    let a = x(&b, "a", &[4]);
    let loss = a.slice(&[2], &[2], &[1]).sum_all() + &a.sum_all();
    assert_eq!(grad_at(&b, &loss, &a, &[4], vec![1.0; 4]), vec![1.0; 4]);
}

#[test]
fn matmul_batched_and_broadcast() {
    let cases: [(&[usize], &[usize]); 8] = [
        (&[3, 4], &[4, 5]),
        (&[1, 1], &[1, 3]),
        (&[2, 3, 4], &[2, 4, 5]),
        (&[2, 1, 3, 4], &[3, 4, 2]),
        (&[3, 4], &[2, 4, 5]),
        (&[2, 3, 4], &[4, 5]),
        (&[1, 3, 4], &[2, 4, 5]),
        (&[2, 2, 3, 4], &[4, 1]),
    ];
    for (k, (sa, sb)) in cases.iter().enumerate() {
        op_check(40 + k as u64, |b| {
            let (p, q) = (x(b, "p", sa), x(b, "q", sb));
            (p.matmul(&q), vec![p, q])
        });
    }
}

#[test]
fn gather_with_repeated_and_out_of_range_indices() {
    for (k, (table, idx_shape, idx)) in [
        (&[7usize, 3][..], &[2usize, 4][..], &[0i32, 6, 2, 2, 9, -1, 6, 3][..]),
        (&[5][..], &[3][..], &[4, 4, 0][..]),
        (&[4, 2, 3][..], &[][..], &[1][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let b = GraphBuilder::new();
        let t = x(&b, "t", table);
        let i = b.input("i", idx_shape.to_vec(), DType::I32);
        let loss = probe_loss(&t.gather(&i));
        let mut bind = bindings_for(&loss, 50 + k as u64);
        bind.insert("i".into(), Value::from_i32(idx_shape.to_vec(), idx).unwrap());
        check(&loss, &[&t], &bind);
    }
}

#[test]
fn unfold_and_fold_are_each_others_adjoint() {
    let w = Window2d {
        kernel: [2, 3],
        stride: [2, 1],
        padding: [1, 0],
    };
    op_check(60, |b| {
        let a = x(b, "a", &[2, 3, 5, 6]);
        (a.unfold2d(w), vec![a])
    });
    let [oh, ow] = w.output_size(5, 6).unwrap();
    op_check(61, |b| {
        let a = x(b, "a", &[2, 3 * 6, oh * ow]);
        (a.fold2d(w, [5, 6]), vec![a])
    });
    // conv2d as the DSL builds it (unfold + matmul), stride 2, padding 1.
    op_check(62, |b| {
        let (img, wt) = (x(b, "img", &[2, 3, 7, 5]), x(b, "w", &[4, 3, 3, 3]));
        (img.conv2d(&wt, [2, 2], [1, 1]), vec![img, wt])
    });
}

#[test]
fn constants_iota_random_onehot_argmax_have_no_gradient() {
    // loss = sum(a * iota) + sum(a * random) + sum(a * one_hot(argmax(a))):
    // d/da = iota + random + one_hot(argmax), nothing flows through argmax/one_hot/random.
    let b = GraphBuilder::new();
    let a = x(&b, "a", &[3, 4]);
    let io = b.iota([3, 4], 1, DType::F32);
    let (seed, step) = (b.scalar("seed", DType::I32), b.scalar("step", DType::I32));
    let rnd = Tensor::random(&seed, &step, [3, 4], Distribution::Normal, 0);
    let oh = a.argmax(1).one_hot(4);
    let loss = (&a * &io).sum_all() + &(&a * &rnd).sum_all() + &(&a * &oh).sum_all();
    let mut bind = bindings_for(&loss, 70);
    bind.insert("seed".into(), Value::scalar(3.0, DType::I32));
    bind.insert("step".into(), Value::scalar(1.0, DType::I32));
    check(&loss, &[&a], &bind);
}
