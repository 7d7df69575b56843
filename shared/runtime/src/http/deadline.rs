//! A request body with a deadline for its last byte. Applied by the server
//! to every request, so no handler can forget it; a handler that reads the
//! body sees [`BodyTimedOut`] in the error chain and answers `408`.

use std::error::Error;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::Cut;

type BoxError = Box<dyn Error + Send + Sync>;

/// The body did not arrive in time.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body did not arrive within the body timeout")]
pub struct BodyTimedOut;

/// Whether `error`, or anything it wraps, is a [`BodyTimedOut`].
pub fn is_body_timeout(error: &(dyn Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<BodyTimedOut>() {
            return true;
        }
        next = error.source();
    }
    false
}

pub struct DeadlineBody<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
    counted: bool,
}

impl<B> DeadlineBody<B> {
    pub fn new(inner: B, deadline: Instant) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            counted: false,
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            if !this.counted {
                this.counted = true;
                Cut::BodyTimeout.count();
            }
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::mpsc;

    type Frames = mpsc::Receiver<Result<Frame<Bytes>, BoxError>>;

    /// A body fed from a channel: it stalls while the sender lives.
    struct ChannelBody(Frames);

    impl Body for ChannelBody {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            self.0.poll_recv(cx)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_fails_at_its_deadline_with_a_recognisable_error() {
        let (sender, frames) = mpsc::channel(1);
        sender
            .send(Ok(Frame::data(Bytes::from_static(b"{"))))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let body = axum::body::Body::new(DeadlineBody::new(ChannelBody(frames), deadline));
        let error = axum::body::to_bytes(body, 1024).await.unwrap_err();
        assert!(is_body_timeout(&error), "{error:?}");
        assert!(Instant::now() >= deadline);
        drop(sender);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_arrives_in_time_passes_through() {
        let (sender, frames) = mpsc::channel(2);
        sender
            .send(Ok(Frame::data(Bytes::from_static(b"{\"a\":1}"))))
            .await
            .unwrap();
        drop(sender);
        let deadline = Instant::now() + Duration::from_secs(30);
        let body = axum::body::Body::new(DeadlineBody::new(ChannelBody(frames), deadline));
        let bytes = axum::body::to_bytes(body, 1024).await.unwrap();
        assert_eq!(&bytes[..], b"{\"a\":1}");
    }
}
