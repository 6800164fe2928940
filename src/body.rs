//! The client's answer body: a chain of byte chunks written as they are, so an upstream's
//! answer is never copied into a second buffer on its way out.
//!
//! A [`Writer`] collects the envelope nodewatch writes (`{"jsonrpc":"2.0","id":…,"result":`)
//! and the raw values it passes through. Small pieces are copied into a scratch buffer (a
//! chunk of its own costs more than copying a few hundred bytes); a value of
//! [`SHARE_FROM`] bytes or more is kept as a slice of the upstream's buffer ([`Bytes`] are
//! reference counted), which is what keeps a multi-MB answer in memory once instead of twice.
//! When the node's body already is the client's answer byte for byte (the client numbered a
//! batch from 0, as ethereum-etl does), it is one chunk: the whole body, uncopied
//! ([`crate::jsonrpc::encode_client`]). The upstream buffer is freed, and its share of the
//! in-flight answer budget given back ([`crate::budget`]), when hyper has written and dropped
//! the last chunk that points into it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};

/// Values at least this long are passed on as slices of the upstream's buffer, not copied.
pub const SHARE_FROM: usize = 1024;

/// A response body made of chunks, with an exact length (so the answer has a Content-Length).
#[derive(Debug, Default)]
pub struct ClientBody {
    chunks: VecDeque<Bytes>,
    len: u64,
}

impl ClientBody {
    /// The body's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the body is empty (an answer to notifications only).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole body in one buffer (tests, and callers that want it contiguous).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len as usize);
        for chunk in &self.chunks {
            out.extend_from_slice(chunk);
        }
        out
    }

    /// How many chunks the body is written as.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}

impl From<Bytes> for ClientBody {
    fn from(bytes: Bytes) -> Self {
        let len = bytes.len() as u64;
        let chunks = if bytes.is_empty() {
            VecDeque::new()
        } else {
            VecDeque::from([bytes])
        };
        Self { chunks, len }
    }
}

impl From<Vec<u8>> for ClientBody {
    fn from(bytes: Vec<u8>) -> Self {
        Self::from(Bytes::from(bytes))
    }
}

impl From<&'static str> for ClientBody {
    fn from(text: &'static str) -> Self {
        Self::from(Bytes::from_static(text.as_bytes()))
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        Poll::Ready(this.chunks.pop_front().map(|chunk| {
            this.len -= chunk.len() as u64;
            Ok(Frame::data(chunk))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

/// Builds a [`ClientBody`]: copied bytes and shared slices, in order.
#[derive(Debug)]
pub struct Writer {
    chunks: VecDeque<Bytes>,
    scratch: BytesMut,
    len: u64,
}

impl Writer {
    /// A writer whose scratch buffer starts with room for `copied` bytes.
    pub fn with_capacity(copied: usize) -> Self {
        Self {
            chunks: VecDeque::new(),
            scratch: BytesMut::with_capacity(copied),
            len: 0,
        }
    }

    /// Appends bytes made here (copied).
    pub fn copy(&mut self, bytes: &[u8]) {
        self.scratch.extend_from_slice(bytes);
        self.len += bytes.len() as u64;
    }

    /// Appends a value from an upstream: shared when it is large, copied when small.
    pub fn share(&mut self, bytes: &Bytes) {
        if bytes.len() < SHARE_FROM {
            return self.copy(bytes);
        }
        self.flush_scratch();
        self.len += bytes.len() as u64;
        self.chunks.push_back(bytes.clone());
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The body written so far.
    pub fn finish(mut self) -> ClientBody {
        self.flush_scratch();
        ClientBody {
            chunks: self.chunks,
            len: self.len,
        }
    }

    fn flush_scratch(&mut self) {
        if !self.scratch.is_empty() {
            self.chunks.push_back(self.scratch.split().freeze());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn small_values_are_copied_large_ones_shared() {
        let upstream = Bytes::from(vec![b'7'; SHARE_FROM * 3]);
        let large = upstream.slice(0..SHARE_FROM * 2);
        let small = upstream.slice(0..10);
        let mut w = Writer::with_capacity(64);
        w.copy(b"[");
        w.share(&small);
        w.copy(b",");
        w.share(&large);
        w.copy(b"]");
        let body = w.finish();
        assert_eq!(
            body.chunk_count(),
            3,
            "copied prefix, the shared slice, the tail"
        );
        assert_eq!(body.len(), (3 + 10 + SHARE_FROM * 2) as u64);
        let expected = [&b"["[..], &small, b",", &large, b"]"].concat();
        assert_eq!(body.to_vec(), expected);
        assert_eq!(body.size_hint().exact(), Some(expected.len() as u64));
        // The shared chunk points into the upstream's buffer: no copy was made.
        let chunks: Vec<Bytes> = body.chunks.iter().cloned().collect();
        assert_eq!(chunks[1].as_ptr(), upstream.as_ptr());
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], &expected[..]);
    }

    #[test]
    fn an_empty_body_has_no_chunks() {
        let body = Writer::with_capacity(0).finish();
        assert!(body.is_empty() && body.is_end_stream() && body.chunk_count() == 0);
        assert!(ClientBody::from(Vec::new()).is_end_stream());
    }
}
