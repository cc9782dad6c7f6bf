//! Tests of the whole pipeline: text in, config or exact error lines out.

mod support;

mod errors;
mod golden;
mod load_ok;
