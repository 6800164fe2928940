//! The proxy's end-to-end test support: the shared toolkit (`nodewatch-testkit`, re-exported
//! so `support::anvil`, `support::rpc`, … read as before) plus [`nodewatch`], the proxy
//! started in-process, which only this crate's tests can use.
#![allow(dead_code, unused_imports)]

pub use nodewatch_testkit::*;

pub mod nodewatch;
