//! The out-of-line helpers generated kernels call through the helper table (see
//! `kiln_compiler::codegen::clif::abi::Helper`): the accurate f64 slow paths for
//! sin/cos beyond the inline reduction's range and for `pow` with general exponents.
//! Owns their implementations and the table layout; nothing else.

use kiln_compiler::codegen::clif::{Helper, HELPER_COUNT};

extern "C" fn kiln_sin(x: f32) -> f32 {
    (x as f64).sin() as f32
}

extern "C" fn kiln_cos(x: f32) -> f32 {
    (x as f64).cos() as f32
}

extern "C" fn kiln_pow(x: f32, e: f64) -> f32 {
    (x as f64).powf(e) as f32
}

/// Function pointers in `Helper` order, as generated code expects them.
#[derive(Clone, Copy, Debug)]
pub struct HelperTable(pub [*const u8; HELPER_COUNT]);

// SAFETY: the table holds addresses of immutable `extern "C"` functions.
unsafe impl Send for HelperTable {}
unsafe impl Sync for HelperTable {}

impl HelperTable {
    pub fn new() -> Self {
        let mut t = [std::ptr::null(); HELPER_COUNT];
        for h in Helper::ALL {
            t[h as usize] = match h {
                Helper::Sin => kiln_sin as *const u8,
                Helper::Cos => kiln_cos as *const u8,
                Helper::Pow => kiln_pow as *const u8,
            };
        }
        HelperTable(t)
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
