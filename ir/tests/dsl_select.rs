//! `select` with plain numbers: a number adopts the dtype of the other branch, so
//! `mask.select(7.0, &x)` works for a bool mask and f32 `x`.

use kiln_ir::interp::{evaluate, Bindings};
use kiln_ir::*;

#[test]
fn numbers_take_the_other_branch_dtype() {
    let b = GraphBuilder::new();
    let x = b.input("x", [4], DType::F32);
    let mask = x.gt(0.0);
    b.output("a", &mask.select(7.0, &x));
    b.output("b", &mask.select(&x, -1.0));
    b.output("c", &mask.select(1.0, 0.0));
    let ix = b.input("i", [4], DType::I32);
    b.output("d", &ix.gt(1).select(&ix, 5));
    let g = b.finish().unwrap();
    let mut bind = Bindings::new();
    bind.insert("x".into(), Value::from_f32([4], &[-1.0, 2.0, 0.0, 3.0]).unwrap());
    bind.insert(
        "i".into(),
        Value::new([4], DType::I32, vec![0.0, 1.0, 2.0, 3.0]).unwrap(),
    );
    let e = evaluate(&g, &bind).unwrap();
    assert_eq!(e.output(&g, "a").unwrap().data, vec![-1.0, 7.0, 0.0, 7.0]);
    assert_eq!(e.output(&g, "b").unwrap().data, vec![-1.0, 2.0, -1.0, 3.0]);
    assert_eq!(e.output(&g, "c").unwrap().data, vec![0.0, 1.0, 0.0, 1.0]);
    let d = e.output(&g, "d").unwrap();
    assert_eq!((d.dtype, d.data.clone()), (DType::I32, vec![5.0, 5.0, 2.0, 3.0]));
}
