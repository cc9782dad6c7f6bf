//! Value grammars of the configuration file, each with its own parser and
//! error type. They are public so that other crates and tests can parse the
//! same syntax (for example a duration given on the command line).

pub mod cidr;
pub mod duration;
pub mod env;
pub mod origin;
pub mod path_pattern;
pub mod size;
pub mod template;
