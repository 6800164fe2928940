//! nodewatch-http: the JSON-RPC-over-HTTP(S) client that the proxy (`nodewatch`) and the
//! exporter (`nodewatch-export`) share.
//!
//! # Layout
//!
//! - [`endpoint`]: a node's URL, checked once ([`Endpoint::parse`]): http or https with a
//!   host; user info cut from the URI and sent as HTTP Basic credentials; extra headers kept
//!   as sensitive values; a redacted display form (`scheme://host:port/…`) for every message.
//! - [`client`]: the pooled hyper-util client ([`client::build`]): keep-alive pool, HTTP/1.1
//!   and h2 by ALPN, rustls (ring) with the webpki roots plus a private CA, TCP_NODELAY, a
//!   connect timeout; [`client::load_ca_file`] reads a PEM bundle.
//! - [`send`]: one POST of a JSON body through a client to an endpoint, bounded in time and
//!   size, with a typed [`SendError`] saying what went wrong and nothing secret.
//!
//! Nothing here knows JSON-RPC beyond the content type: the proxy keeps bodies raw, the
//! exporter parses them, each in its own crate.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod client;
pub mod endpoint;
pub mod send;

pub use client::{ClientOptions, HttpClient};
pub use endpoint::{Endpoint, EndpointError};
pub use send::{post, post_head, AnswerHead, SendError};
