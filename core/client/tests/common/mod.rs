//! Shared test code: the store suite and backend harnesses.

pub mod suite;
