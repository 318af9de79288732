//! Code generators: kernel IR ([`crate::kernel`]) to backend code.
//!
//! Owns the translation only. A generator emits plain data (Cranelift `Function`s plus
//! a description of their ABI; later CUDA C text); it never loads, links or runs code,
//! and holds no JIT module or device handle — that is the runtime's job.

pub mod clif;
pub mod cuda;
