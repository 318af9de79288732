//! Every op of the reference interpreter on small hand-computed values, including the
//! edge cases the semantics pin down (NaN, infinities, i32 wrapping, out-of-range
//! indices, empty reductions).

use kiln_ir::interp::{eval_op, evaluate_nodes};
use kiln_ir::philox::random_f64;
use kiln_ir::*;

const NAN: f64 = f64::NAN;
const INF: f64 = f64::INFINITY;

/// A graph under construction plus the bindings of its inputs.
struct Case {
    b: GraphBuilder,
    bd: Bindings,
}

impl Case {
    fn new() -> Self {
        Case {
            b: GraphBuilder::new(),
            bd: Bindings::new(),
        }
    }
    fn bind(&mut self, name: &str, v: Value) -> Tensor {
        let t = self.b.input(name, v.shape.clone(), v.dtype);
        self.bd.insert(name.into(), v);
        t
    }
    fn f32(&mut self, name: &str, shape: impl Into<Shape>, data: &[f64]) -> Tensor {
        self.bind(name, Value::new(shape, DType::F32, data.to_vec()).unwrap())
    }
    fn i32(&mut self, name: &str, shape: impl Into<Shape>, data: &[i32]) -> Tensor {
        self.bind(name, Value::from_i32(shape, data).unwrap())
    }
    fn scalar_i32(&mut self, name: &str, v: i32) -> Tensor {
        let t = self.b.scalar(name, DType::I32);
        self.bd.insert(name.into(), Value::scalar(v as f64, DType::I32));
        t
    }
    fn eval(&self, t: &Tensor) -> Value {
        let id = t.check().unwrap();
        let g = self.b.finish().unwrap();
        evaluate_nodes(&g, &self.bd, &[id]).unwrap().remove(0)
    }
}

/// Exact comparison where NaN equals NaN.
fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b
}

#[track_caller]
fn assert_exact(v: &Value, shape: &[usize], want: &[f64]) {
    assert_eq!(v.shape.dims(), shape, "shape of {v}");
    assert_eq!(v.data.len(), want.len(), "{v}");
    for (i, (&g, &w)) in v.data.iter().zip(want).enumerate() {
        assert!(same(g, w), "element {i}: got {g}, want {w} in {v}");
    }
}

#[track_caller]
fn assert_close(v: &Value, shape: &[usize], want: &[f64]) {
    assert_eq!(v.shape.dims(), shape, "shape of {v}");
    assert_eq!(v.data.len(), want.len(), "{v}");
    for (i, (&g, &w)) in v.data.iter().zip(want).enumerate() {
        assert!(
            same(g, w) || (g - w).abs() <= 1e-12 * w.abs().max(1.0),
            "element {i}: got {g}, want {w}"
        );
    }
}

#[test]
fn const_iota_and_random() {
    let mut c = Case::new();
    let k = c.b.full(2.7, [2], DType::I32);
    let kf = c.b.full(-1.5, [2, 1], DType::F32);
    let io = c.b.iota([2, 3], 1, DType::I32);
    let io0 = c.b.iota([2, 3], 0, DType::F32);
    assert_exact(&c.eval(&k), &[2], &[2.0, 2.0]);
    assert_exact(&c.eval(&kf), &[2, 1], &[-1.5, -1.5]);
    assert_exact(&c.eval(&io), &[2, 3], &[0.0, 1.0, 2.0, 0.0, 1.0, 2.0]);
    assert_exact(&c.eval(&io0), &[2, 3], &[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);

    let seed = c.scalar_i32("seed", -3);
    let step = c.scalar_i32("step", 9);
    let u = Tensor::random(&seed, &step, [2, 3], Distribution::Uniform, 4);
    let n = Tensor::random(&seed, &step, [5], Distribution::Normal, 0);
    let want_u: Vec<f64> = (0..6).map(|i| random_f64(Distribution::Uniform, -3, 9, 4, i)).collect();
    let want_n: Vec<f64> = (0..5).map(|i| random_f64(Distribution::Normal, -3, 9, 0, i)).collect();
    assert_exact(&c.eval(&u), &[2, 3], &want_u);
    assert_exact(&c.eval(&n), &[5], &want_n);
    // Changing the step scalar changes every draw without rebuilding the graph.
    c.bd.insert("step".into(), Value::scalar(10.0, DType::I32));
    let again = c.eval(&u);
    assert!(again.data.iter().zip(&want_u).all(|(a, b)| a != b));
}

#[test]
fn unary_f32() {
    let mut c = Case::new();
    let x = c.f32("x", [7], &[-2.0, -0.0, 0.0, 0.5, 4.0, INF, NAN]);
    let e = |t: Tensor| c.eval(&t);
    let xs = [-2.0f64, -0.0, 0.0, 0.5, 4.0, INF, NAN];
    let map = |f: fn(f64) -> f64| xs.iter().map(|&v| f(v)).collect::<Vec<_>>();
    assert_exact(&e(x.neg()), &[7], &[2.0, 0.0, -0.0, -0.5, -4.0, -INF, NAN]);
    assert_exact(&e(x.exp()), &[7], &map(f64::exp));
    assert_exact(
        &e(x.log()),
        &[7],
        &[NAN, -INF, -INF, 0.5f64.ln(), 4.0f64.ln(), INF, NAN],
    );
    assert_exact(&e(x.sqrt()), &[7], &[NAN, -0.0, 0.0, 0.5f64.sqrt(), 2.0, INF, NAN]);
    assert_exact(
        &e(x.rsqrt()),
        &[7],
        &[NAN, -INF, INF, 1.0 / 0.5f64.sqrt(), 0.5, 0.0, NAN],
    );
    assert_exact(&e(x.recip()), &[7], &[-0.5, -INF, INF, 2.0, 0.25, 0.0, NAN]);
    assert_exact(&e(x.abs()), &[7], &[2.0, 0.0, 0.0, 0.5, 4.0, INF, NAN]);
    assert_exact(&e(x.sign()), &[7], &[-1.0, 0.0, 0.0, 1.0, 1.0, 1.0, NAN]);
    assert_exact(&e(x.tanh()), &[7], &map(f64::tanh));
    assert_exact(&e(x.relu()), &[7], &[0.0, 0.0, 0.0, 0.5, 4.0, INF, NAN]);
    assert_exact(&e(x.sin()), &[7], &map(f64::sin));
    assert_exact(&e(x.cos()), &[7], &map(f64::cos));
    let s = e(x.sigmoid());
    assert_close(
        &s,
        &[7],
        &[
            1.0 / (1.0 + 2f64.exp()),
            0.5,
            0.5,
            1.0 / (1.0 + (-0.5f64).exp()),
            1.0 / (1.0 + (-4f64).exp()),
            1.0,
            NAN,
        ],
    );
    // sign(-0) is exactly +0 (not -0).
    assert!(s.data[1] == 0.5 && e(x.sign()).data[1].is_sign_positive());
}

#[test]
fn sigmoid_is_stable_for_large_magnitudes() {
    let mut c = Case::new();
    let x = c.f32("x", [4], &[-1000.0, -40.0, 40.0, 1000.0]);
    let s = c.eval(&x.sigmoid());
    assert_eq!(s.data[0], 0.0);
    assert!(s.data[1] > 0.0 && (s.data[1] - (-40f64).exp()).abs() < 1e-30);
    assert_eq!(s.data[3], 1.0);
    assert!(s.data.iter().all(|v| !v.is_nan()));
}

#[test]
fn unary_i32_wraps() {
    let mut c = Case::new();
    let x = c.i32("x", [5], &[i32::MIN, -3, 0, 7, i32::MAX]);
    let m = i32::MIN as f64;
    assert_exact(&c.eval(&x.neg()), &[5], &[m, 3.0, 0.0, -7.0, -(i32::MAX as f64)]);
    assert_exact(&c.eval(&x.abs()), &[5], &[m, 3.0, 0.0, 7.0, i32::MAX as f64]);
    assert_exact(&c.eval(&x.sign()), &[5], &[-1.0, -1.0, 0.0, 1.0, 1.0]);
    assert_exact(&c.eval(&x.relu()), &[5], &[0.0, 0.0, 0.0, 7.0, i32::MAX as f64]);
    assert_eq!(c.eval(&x.neg()).dtype, DType::I32);
}

#[test]
fn binary_f32() {
    let mut c = Case::new();
    let a = c.f32("a", [5], &[1.0, -2.0, 3.0, NAN, 0.0]);
    let b = c.f32("b", [5], &[4.0, 5.0, -0.5, 1.0, 0.0]);
    assert_exact(&c.eval(&(&a + &b)), &[5], &[5.0, 3.0, 2.5, NAN, 0.0]);
    assert_exact(&c.eval(&(&a - &b)), &[5], &[-3.0, -7.0, 3.5, NAN, 0.0]);
    assert_exact(&c.eval(&(&a * &b)), &[5], &[4.0, -10.0, -1.5, NAN, 0.0]);
    assert_exact(&c.eval(&(&a / &b)), &[5], &[0.25, -0.4, -6.0, NAN, NAN]);
    assert_exact(&c.eval(&a.maximum(&b)), &[5], &[4.0, 5.0, 3.0, NAN, 0.0]);
    assert_exact(&c.eval(&a.minimum(&b)), &[5], &[1.0, -2.0, -0.5, NAN, 0.0]);
    // NaN propagates from either side.
    assert!(c.eval(&b.maximum(&a)).data[3].is_nan() && c.eval(&b.minimum(&a)).data[3].is_nan());
    let one = c.f32("one", [2], &[1.0, -1.0]);
    let z = c.f32("z", [2], &[0.0, 0.0]);
    assert_exact(&c.eval(&(&one / &z)), &[2], &[INF, -INF]);
}

#[test]
fn binary_i32_wraps() {
    let mut c = Case::new();
    let a = c.i32("a", [4], &[i32::MAX, i32::MIN, 65536, -7]);
    let b = c.i32("b", [4], &[1, 1, 65536, 3]);
    assert_exact(
        &c.eval(&(&a + &b)),
        &[4],
        &[i32::MIN as f64, -2147483647.0, 131072.0, -4.0],
    );
    assert_exact(&c.eval(&(&a - &b)), &[4], &[2147483646.0, i32::MAX as f64, 0.0, -10.0]);
    assert_exact(
        &c.eval(&(&a * &b)),
        &[4],
        &[i32::MAX as f64, i32::MIN as f64, 0.0, -21.0],
    );
    assert_exact(&c.eval(&a.maximum(&b)), &[4], &[i32::MAX as f64, 1.0, 65536.0, 3.0]);
    assert_exact(&c.eval(&a.minimum(&b)), &[4], &[1.0, i32::MIN as f64, 65536.0, -7.0]);
}

#[test]
fn pow_const() {
    let mut c = Case::new();
    let x = c.f32("x", [4], &[-2.0, 0.0, 0.25, 3.0]);
    assert_exact(&c.eval(&x.powf(2.0)), &[4], &[4.0, 0.0, 0.0625, 9.0]);
    assert_exact(&c.eval(&x.powf(3.0)), &[4], &[-8.0, 0.0, 0.015625, 27.0]);
    assert_exact(&c.eval(&x.powf(0.5)), &[4], &[NAN, 0.0, 0.5, 3f64.sqrt()]);
    assert_exact(&c.eval(&x.powf(-1.0)), &[4], &[-0.5, INF, 4.0, 1.0 / 3.0]);
    assert_exact(&c.eval(&x.powf(0.0)), &[4], &[1.0; 4]);
}

#[test]
fn compare_ops() {
    let mut c = Case::new();
    let a = c.f32("a", [4], &[1.0, 2.0, 3.0, NAN]);
    let b = c.f32("b", [4], &[2.0, 2.0, 2.0, NAN]);
    let cases = [
        (a.lt(&b), [1.0, 0.0, 0.0, 0.0]),
        (a.le(&b), [1.0, 1.0, 0.0, 0.0]),
        (a.gt(&b), [0.0, 0.0, 1.0, 0.0]),
        (a.ge(&b), [0.0, 1.0, 1.0, 0.0]),
        (a.eq(&b), [0.0, 1.0, 0.0, 0.0]),
        (a.ne(&b), [1.0, 0.0, 1.0, 1.0]),
    ];
    for (t, want) in cases {
        let v = c.eval(&t);
        assert_eq!(v.dtype, DType::Bool);
        assert_exact(&v, &[4], &want);
    }
    let i = c.i32("i", [3], &[-1, 0, 5]);
    assert_exact(&c.eval(&i.ge(0)), &[3], &[0.0, 1.0, 1.0]);
    let p = c.bind("p", Value::from_bool([2], &[true, false]).unwrap());
    let q = c.bind("q", Value::from_bool([2], &[true, true]).unwrap());
    assert_exact(&c.eval(&p.eq(&q)), &[2], &[1.0, 0.0]);
}

#[test]
fn select_and_cast() {
    let mut c = Case::new();
    let cond = c.bind("c", Value::from_bool([3], &[true, false, true]).unwrap());
    let t = c.f32("t", [3], &[1.0, 2.0, NAN]);
    let f = c.f32("f", [3], &[-1.0, NAN, -3.0]);
    assert_exact(&c.eval(&cond.select(&t, &f)), &[3], &[1.0, NAN, NAN]);

    let x = c.f32("x", [7], &[-2.7, -0.5, 0.0, 2.9, NAN, 1e10, -1e10]);
    let xi = c.eval(&x.cast(DType::I32));
    assert_eq!(xi.dtype, DType::I32);
    assert_exact(&xi, &[7], &[-2.0, 0.0, 0.0, 2.0, 0.0, i32::MAX as f64, i32::MIN as f64]);
    assert_exact(
        &c.eval(&x.cast(DType::Bool)),
        &[7],
        &[1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0],
    );
    let back = c.eval(&x.cast(DType::Bool).cast(DType::F32));
    assert_eq!(back.dtype, DType::F32);
    assert_exact(&back, &[7], &[1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
    let i = c.i32("i", [3], &[-4, 0, 9]);
    assert_exact(&c.eval(&i.cast(DType::F32)), &[3], &[-4.0, 0.0, 9.0]);
    assert_exact(&c.eval(&i.cast(DType::Bool)), &[3], &[1.0, 0.0, 1.0]);
}

#[test]
fn reductions() {
    let mut c = Case::new();
    // [[1, 2, 3], [4, 5, 6]]
    let x = c.f32("x", [2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_exact(&c.eval(&x.sum(&[0], false)), &[3], &[5.0, 7.0, 9.0]);
    assert_exact(&c.eval(&x.sum(&[1], true)), &[2, 1], &[6.0, 15.0]);
    assert_exact(&c.eval(&x.sum(&[0, 1], false)), &[], &[21.0]);
    assert_exact(&c.eval(&x.sum(&[0, 1], true)), &[1, 1], &[21.0]);
    assert_exact(&c.eval(&x.mean(&[1], false)), &[2], &[2.0, 5.0]);
    assert_exact(&c.eval(&x.max(&[0], false)), &[3], &[4.0, 5.0, 6.0]);
    assert_exact(&c.eval(&x.min(&[1], false)), &[2], &[1.0, 4.0]);
    // Reducing no axes is the identity.
    assert_exact(&c.eval(&x.sum(&[], false)), &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);

    let n = c.f32("n", [2, 3], &[1.0, NAN, 3.0, -INF, 0.0, 2.0]);
    assert_exact(&c.eval(&n.max(&[1], false)), &[2], &[NAN, 2.0]);
    assert_exact(&c.eval(&n.min(&[1], false)), &[2], &[NAN, -INF]);
    assert_exact(&c.eval(&n.sum(&[0], false)), &[3], &[-INF, NAN, 5.0]);

    let e = c.f32("e", [0, 3], &[]);
    assert_exact(&c.eval(&e.sum(&[0], false)), &[3], &[0.0; 3]);
    assert_exact(&c.eval(&e.mean(&[0], false)), &[3], &[NAN; 3]);
    assert_exact(&c.eval(&e.max(&[0], false)), &[3], &[-INF; 3]);
    assert_exact(&c.eval(&e.min(&[0], false)), &[3], &[INF; 3]);
    assert_exact(&c.eval(&e.sum(&[1], false)), &[0], &[]);

    let i = c.i32("i", [3], &[i32::MAX, 1, 5]);
    let s = c.eval(&i.sum(&[0], false));
    assert_eq!(s.dtype, DType::I32);
    assert_exact(&s, &[], &[(i32::MIN + 5) as f64]);
    assert_exact(&c.eval(&i.max(&[0], false)), &[], &[i32::MAX as f64]);
    let ie = c.i32("ie", [0], &[]);
    assert_exact(&c.eval(&ie.max(&[0], false)), &[], &[i32::MIN as f64]);
    assert_exact(&c.eval(&ie.min(&[0], false)), &[], &[i32::MAX as f64]);
}

#[test]
fn argmax_first_wins_and_nan_is_max() {
    let mut c = Case::new();
    let x = c.f32(
        "x",
        [3, 4],
        &[1.0, 3.0, 3.0, 2.0, NAN, 5.0, NAN, 9.0, -INF, -INF, -INF, -INF],
    );
    let a = c.eval(&x.argmax(1));
    assert_eq!(a.dtype, DType::I32);
    assert_exact(&a, &[3], &[1.0, 0.0, 0.0]);
    assert_exact(&c.eval(&x.argmax(0)), &[4], &[1.0, 1.0, 1.0, 1.0]);
    let y = c.f32("y", [2, 2], &[2.0, 2.0, 1.0, 7.0]);
    assert_exact(&c.eval(&y.argmax(0)), &[2], &[0.0, 1.0]);
    let i = c.i32("i", [4], &[-5, 8, 8, 1]);
    assert_exact(&c.eval(&i.argmax(0)), &[], &[1.0]);
}

#[test]
fn reshape_expand_permute() {
    let mut c = Case::new();
    let x = c.f32("x", [2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_exact(&c.eval(&x.reshape([3, 2])), &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_exact(&c.eval(&x.reshape([6])), &[6], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_exact(&c.eval(&x.t()), &[3, 2], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    let r = c.f32("r", [3, 1], &[1.0, 2.0, 3.0]);
    assert_exact(
        &c.eval(&r.broadcast_to([2, 3, 2])),
        &[2, 3, 2],
        &[1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0],
    );
    let s = c.f32("s", [], &[7.0]);
    assert_exact(&c.eval(&s.broadcast_to([2, 2])), &[2, 2], &[7.0; 4]);
    // [2, 3, 4] permuted by [2, 0, 1]: out[k, i, j] = x[i, j, k].
    let data: Vec<f64> = (0..24).map(|v| v as f64).collect();
    let y = c.f32("y", [2, 3, 4], &data);
    let p = c.eval(&y.permute(&[2, 0, 1]));
    assert_eq!(p.shape.dims(), &[4, 2, 3]);
    for k in 0..4 {
        for i in 0..2 {
            for j in 0..3 {
                assert_eq!(p.get(&[k, i, j]), Some((i * 12 + j * 4 + k) as f64));
            }
        }
    }
}

#[test]
fn slice_pad_concat() {
    let mut c = Case::new();
    let data: Vec<f64> = (0..12).map(|v| v as f64).collect();
    let x = c.f32("x", [3, 4], &data);
    assert_exact(
        &c.eval(&x.slice(&[1, 0], &[3, 4], &[1, 2])),
        &[2, 2],
        &[4.0, 6.0, 8.0, 10.0],
    );
    assert_exact(
        &c.eval(&x.slice(&[0, 1], &[3, 4], &[2, 2])),
        &[2, 2],
        &[1.0, 3.0, 9.0, 11.0],
    );
    assert_exact(&c.eval(&x.slice(&[0, 3], &[3, 3], &[1, 1])), &[3, 0], &[]);
    assert_exact(&c.eval(&x.narrow(1, 3, 1)), &[3, 1], &[3.0, 7.0, 11.0]);

    let y = c.f32("y", [2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let p = c.eval(&y.pad(&[1, 0], &[0, 2], -9.0));
    #[rustfmt::skip]
    let want = [
        -9.0, -9.0, -9.0, -9.0,
        1.0, 2.0, -9.0, -9.0,
        3.0, 4.0, -9.0, -9.0,
    ];
    assert_exact(&p, &[3, 4], &want);
    let i = c.i32("i", [2], &[5, 6]);
    assert_exact(&c.eval(&i.pad(&[2], &[1], 0.0)), &[5], &[0.0, 0.0, 5.0, 6.0, 0.0]);

    let z = c.f32("z", [2, 1], &[7.0, 8.0]);
    let e = c.f32("e", [2, 0], &[]);
    assert_exact(
        &c.eval(&y.concat(&[&z, &e, &y], 1)),
        &[2, 5],
        &[1.0, 2.0, 7.0, 1.0, 2.0, 3.0, 4.0, 8.0, 3.0, 4.0],
    );
    assert_exact(
        &c.eval(&y.concat(&[&y], 0)),
        &[4, 2],
        &[1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0],
    );
}

#[test]
fn matmul_small() {
    let mut c = Case::new();
    let a = c.f32("a", [2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = c.f32("b", [3, 2], &[7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
    assert_exact(&c.eval(&a.matmul(&b)), &[2, 2], &[58.0, 64.0, 139.0, 154.0]);
    // Batched lhs [2, 1, 2] @ shared rhs [2, 2].
    let bl = c.f32("bl", [2, 1, 2], &[1.0, 0.0, 0.0, 1.0]);
    let r = c.f32("r", [2, 2], &[1.0, 2.0, 3.0, 4.0]);
    assert_exact(&c.eval(&bl.matmul(&r)), &[2, 1, 2], &[1.0, 2.0, 3.0, 4.0]);
    // k = 0 gives zeros.
    let e1 = c.f32("e1", [2, 0], &[]);
    let e2 = c.f32("e2", [0, 3], &[]);
    assert_exact(&c.eval(&e1.matmul(&e2)), &[2, 3], &[0.0; 6]);
}

#[test]
fn gather_and_one_hot() {
    let mut c = Case::new();
    let table = c.f32("t", [3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let idx = c.i32("idx", [2, 2], &[2, 0, -1, 3]);
    let g = c.eval(&table.gather(&idx));
    assert_exact(&g, &[2, 2, 2], &[5.0, 6.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0]);
    let t1 = c.i32("t1", [4], &[10, 11, 12, 13]);
    let i1 = c.i32("i1", [3], &[3, 3, 0]);
    let g1 = c.eval(&t1.gather(&i1));
    assert_eq!(g1.dtype, DType::I32);
    assert_exact(&g1, &[3], &[13.0, 13.0, 10.0]);
    let s = c.i32("s", [], &[1]);
    assert_exact(&c.eval(&table.gather(&s)), &[2], &[3.0, 4.0]);

    let labels = c.i32("labels", [4], &[0, 2, -1, 3]);
    let oh = c.eval(&labels.one_hot(3));
    assert_eq!(oh.dtype, DType::F32);
    #[rustfmt::skip]
    let want = [
        1.0, 0.0, 0.0,
        0.0, 0.0, 1.0,
        0.0, 0.0, 0.0,
        0.0, 0.0, 0.0,
    ];
    assert_exact(&oh, &[4, 3], &want);
}

fn window(k: [usize; 2], s: [usize; 2], p: [usize; 2]) -> Window2d {
    Window2d {
        kernel: k,
        stride: s,
        padding: p,
    }
}

#[test]
fn unfold2d_matches_pytorch_layout() {
    let mut c = Case::new();
    // torch.arange(18.).reshape(1, 2, 3, 3), nn.Unfold(kernel_size=2)
    let data: Vec<f64> = (0..18).map(|v| v as f64).collect();
    let x = c.f32("x", [1, 2, 3, 3], &data);
    let u = c.eval(&x.unfold2d(window([2, 2], [1, 1], [0, 0])));
    #[rustfmt::skip]
    let want = [
        0.0, 1.0, 3.0, 4.0,
        1.0, 2.0, 4.0, 5.0,
        3.0, 4.0, 6.0, 7.0,
        4.0, 5.0, 7.0, 8.0,
        9.0, 10.0, 12.0, 13.0,
        10.0, 11.0, 13.0, 14.0,
        12.0, 13.0, 15.0, 16.0,
        13.0, 14.0, 16.0, 17.0,
    ];
    assert_exact(&u, &[1, 8, 4], &want);

    // torch.arange(4.).reshape(1, 1, 2, 2), nn.Unfold(kernel_size=(1, 2), padding=1, stride=(2, 1))
    let y = c.f32("y", [1, 1, 2, 2], &[0.0, 1.0, 2.0, 3.0]);
    let u = c.eval(&y.unfold2d(window([1, 2], [2, 1], [1, 1])));
    // padded 4x4: rows -1..3 step 2 -> padded rows 0 and 2 (image rows -1 and 1); 3 column positions.
    #[rustfmt::skip]
    let want = [
        0.0, 0.0, 0.0, 0.0, 2.0, 3.0,
        0.0, 0.0, 0.0, 2.0, 3.0, 0.0,
    ];
    assert_exact(&u, &[1, 2, 6], &want);
}

#[test]
fn fold2d_sums_overlaps() {
    let mut c = Case::new();
    let ones = c.f32("ones", [1, 4, 4], &[1.0; 16]);
    let f = c.eval(&ones.fold2d(window([2, 2], [1, 1], [0, 0]), [3, 3]));
    assert_exact(&f, &[1, 1, 3, 3], &[1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
    // Fold of unfold with non-overlapping windows (stride = kernel) is the identity.
    let data: Vec<f64> = (0..2 * 3 * 4 * 6).map(|v| v as f64 * 0.5).collect();
    let x = c.f32("x", [2, 3, 4, 6], &data);
    let w = window([2, 3], [2, 3], [0, 0]);
    assert_exact(&c.eval(&x.unfold2d(w).fold2d(w, [4, 6])), &[2, 3, 4, 6], &data);
    // Kernel 3, padding 1, stride 1 on a 2x2 image: each of the 2x2 window positions
    // covers every pixel once, so fold(unfold(y)) = 4 y.
    let y = c.f32("y", [1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let w = window([3, 3], [1, 1], [1, 1]);
    assert_exact(
        &c.eval(&y.unfold2d(w).fold2d(w, [2, 2])),
        &[1, 1, 2, 2],
        &[4.0, 8.0, 12.0, 16.0],
    );
}

#[test]
fn eval_op_validates_operands() {
    let a = Value::from_f32([2], &[1.0, 2.0]).unwrap();
    let b = Value::from_f32([2], &[3.0, 5.0]).unwrap();
    let ty = TensorType::new([2], DType::F32);
    let sum = eval_op(&Op::Binary(BinaryOp::Add), &ty, &[&a, &b]).unwrap();
    assert_eq!(sum.data, vec![4.0, 7.0]);
    let c = Value::from_f32([3], &[0.0; 3]).unwrap();
    let err = eval_op(&Op::Binary(BinaryOp::Add), &ty, &[&a, &c]).unwrap_err();
    assert!(matches!(err, IrError::ShapeMismatch { .. }), "{err}");
    let err = eval_op(&Op::Binary(BinaryOp::Add), &TensorType::new([3], DType::F32), &[&a, &b]).unwrap_err();
    assert!(matches!(err, IrError::Invalid { .. }), "{err}");
    let src = Op::Input { name: "x".into() };
    assert!(eval_op(&src, &ty, &[]).is_err());
}
