//! Tests of the whole pipeline: text in, config or exact error lines out.

mod support;

mod errors;
mod fuzz_corpus;
mod golden;
mod limits_and_topics;
mod load_ok;
mod safety;
mod warnings;
