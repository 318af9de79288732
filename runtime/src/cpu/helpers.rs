//! The helper table generated kernels call through (layout in
//! `kiln_compiler::codegen::clif::abi`): the runtime's out-of-line helpers — the
//! accurate f64 slow paths for sin/cos beyond the inline reduction's range and for
//! `pow` with general exponents — followed by the program's JIT-compiled support
//! functions. Owns the helper implementations and the table; nothing else.

use kiln_compiler::codegen::clif::{Helper, MathFn, TABLE_LEN};

extern "C" fn kiln_sin(x: f32) -> f32 {
    (x as f64).sin() as f32
}

extern "C" fn kiln_cos(x: f32) -> f32 {
    (x as f64).cos() as f32
}

extern "C" fn kiln_pow(x: f32, e: f64) -> f32 {
    (x as f64).powf(e) as f32
}

/// Function pointers in table order (`Helper`s, then `MathFn` support functions).
#[derive(Clone, Debug)]
pub struct HelperTable(Vec<*const u8>);

// SAFETY: the table holds addresses of immutable functions (Rust `extern "C"` helpers
// and finalized JIT code owned by the same `JitProgram`).
unsafe impl Send for HelperTable {}
unsafe impl Sync for HelperTable {}

impl HelperTable {
    /// The runtime's helpers; no support functions.
    pub fn new() -> Self {
        let mut t = vec![std::ptr::null(); TABLE_LEN];
        for h in Helper::ALL {
            t[h as usize] = match h {
                Helper::Sin => kiln_sin as *const u8,
                Helper::Cos => kiln_cos as *const u8,
                Helper::Pow => kiln_pow as *const u8,
            };
        }
        HelperTable(t)
    }

    /// Install the address of a program's support function.
    pub fn set_support(&mut self, f: MathFn, address: *const u8) {
        self.0[f.table_index()] = address;
    }

    pub fn as_ptr(&self) -> *const *const u8 {
        self.0.as_ptr()
    }
}

impl Default for HelperTable {
    fn default() -> Self {
        Self::new()
    }
}
