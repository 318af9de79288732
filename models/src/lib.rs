//! kiln-models: layers, models, losses and optimizers written in kiln's DSL.
//!
//! Everything here builds `kiln_ir` graphs through `GraphBuilder`; this crate depends on
//! kiln-ir only and must not know about autodiff, compilation or devices.

pub mod layers;
pub mod nets;
pub mod optim;
