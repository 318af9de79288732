//! Autodiff test suite (one test binary): the gradcheck harness, a gradcheck for
//! every differentiable op, composite models, stability with huge logits, second
//! derivatives, API contract and pruning, and a property test over random graphs.

mod api;
mod composite;
mod gradcheck;
mod higher_order;
mod ops;
mod random_graphs;
