//! nodewatch-http: the JSON-RPC-over-HTTP(S) client that the proxy (`nodewatch`) and the
//! exporter (`nodewatch-export`) share.
//!
//! # Layout
//!
//! - [`endpoint`]: a node's URL, checked once ([`Endpoint::parse`]): http or https with a
//!   host; user info cut from the URI and sent as HTTP Basic credentials; extra headers kept
//!   as sensitive values; a redacted display form (`scheme://host:port/…`) for every message.
//! - [`client`]: the client ([`client::build`]): plain http through [`direct`]; https
//!   through hyper-util's keep-alive pool, HTTP/1.1 and h2 by ALPN, rustls (ring) with the
//!   webpki roots plus a private CA; TCP_NODELAY and a connect timeout for both;
//!   [`client::load_ca_file`] reads a PEM bundle.
//! - [`direct`]: plain-http HTTP/1.1 connections polled by the task that sends on them
//!   (no connection task, no channel hops), and the [`AnswerBody`] that keeps them going
//!   while the answer is read and gives them back at its end; kept per thread on threads
//!   that run their own runtime ([`keep_connections_per_thread`]).
//! - [`error`]: [`SendError`], what went wrong in an exchange, and whether to try again;
//!   [`SendFailure`] adds the `Retry-After` a refusing server gave ([`error::retry_after`]).
//! - [`send`]: one POST of a JSON body through a client to an endpoint, bounded in time and
//!   size, with a typed [`SendError`] saying what went wrong and nothing secret.
//!
//! Nothing here knows JSON-RPC beyond the content type: the proxy keeps bodies raw, the
//! exporter parses them, each in its own crate.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod client;
pub mod direct;
pub mod endpoint;
pub mod error;
pub mod send;

pub use client::{ClientOptions, HttpClient};
pub use direct::{keep_connections_per_thread, AnswerBody};
pub use endpoint::{Endpoint, EndpointError};
pub use error::{SendError, SendFailure};
pub use send::{post, post_detailed, post_head, post_head_detailed, AnswerHead};
