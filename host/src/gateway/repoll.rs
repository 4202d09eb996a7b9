//! A future that wakes itself while it is being polled is polled again at once, in place.
//!
//! tokio reschedules a task woken during its own poll as a yield, and a yield wakes a parked worker to look for
//! work: a thread wake-up, for nothing, since the task is run again by the worker that already has it. A served
//! HTTP call does this once per request: the handler taking the request body wakes hyper's connection task (the
//! body channel wakes its sender when an item is taken, even after the sender is gone), and the handler runs in
//! that task. Around a connection, [`RePoll`] turns such a wake into another poll, up to [`AGAIN`] times in a row;
//! after that it yields through the scheduler as before, so a connection that keeps waking itself still lets the
//! others run. A wake from anywhere else, while the future is not being polled, goes to the task as usual.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// Polls in a row after self-wakes before yielding to the scheduler.
const AGAIN: usize = 4;

/// Runs `inner`, polling it again in place when it wakes itself during a poll.
pub struct RePoll<F> {
    inner: Pin<Box<F>>,
    state: Arc<State>,
    waker: Waker,
}

struct State {
    polling: AtomicBool,
    woken: AtomicBool,
    /// The waker of the task this future runs in (the last one it was polled with).
    task: Mutex<Option<Waker>>,
}

impl Wake for State {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Order matters against `poll`: `woken` is set before `polling` is read, and `poll` clears `polling` before
        // it reads `woken`, so a wake is either seen by the poll or passed to the task (or both), never lost.
        self.woken.store(true, Ordering::SeqCst);
        if !self.polling.load(Ordering::SeqCst) {
            let task = self.task.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(w) = task.as_ref() {
                w.wake_by_ref();
            }
        }
    }
}

impl<F: Future> RePoll<F> {
    pub fn new(inner: F) -> Self {
        let state = Arc::new(State {
            polling: AtomicBool::new(false),
            woken: AtomicBool::new(false),
            task: Mutex::new(None),
        });
        RePoll {
            inner: Box::pin(inner),
            waker: Waker::from(state.clone()),
            state,
        }
    }
}

impl<F: Future> Future for RePoll<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        {
            let mut task = self.state.task.lock().unwrap_or_else(|p| p.into_inner());
            if !task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        let this = &mut *self;
        for _ in 0..AGAIN {
            this.state.woken.store(false, Ordering::SeqCst);
            this.state.polling.store(true, Ordering::SeqCst);
            let polled = this
                .inner
                .as_mut()
                .poll(&mut Context::from_waker(&this.waker));
            this.state.polling.store(false, Ordering::SeqCst);
            if polled.is_ready() {
                return polled;
            }
            if !this.state.woken.swap(false, Ordering::SeqCst) {
                return Poll::Pending;
            }
        }
        // Still waking itself: let the scheduler run others first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Wakes itself `n` times during its polls, then is ready; counts its polls.
    struct SelfWaking {
        left: usize,
        polls: Arc<AtomicUsize>,
    }

    impl Future for SelfWaking {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.left == 0 {
                return Poll::Ready(());
            }
            self.left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    /// Counts the wakes the task gets.
    struct Counter(AtomicUsize);
    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_self_wake_is_a_poll_in_place_and_the_task_is_not_woken() {
        let polls = Arc::new(AtomicUsize::new(0));
        let task = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(task.clone());
        let mut f = std::pin::pin!(RePoll::new(SelfWaking {
            left: 2,
            polls: polls.clone()
        }));
        assert!(f.as_mut().poll(&mut Context::from_waker(&waker)).is_ready());
        assert_eq!(polls.load(Ordering::SeqCst), 3);
        assert_eq!(task.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn too_many_self_wakes_yield_through_the_task() {
        let polls = Arc::new(AtomicUsize::new(0));
        let task = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(task.clone());
        let mut f = std::pin::pin!(RePoll::new(SelfWaking {
            left: AGAIN + 1,
            polls: polls.clone()
        }));
        assert!(
            f.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        assert_eq!(polls.load(Ordering::SeqCst), AGAIN);
        assert_eq!(
            task.0.load(Ordering::SeqCst),
            1,
            "the task was told to run again"
        );
        assert!(f.as_mut().poll(&mut Context::from_waker(&waker)).is_ready());
    }

    #[test]
    fn a_wake_between_polls_reaches_the_task() {
        let (tx, rx) = std::sync::mpsc::channel::<Waker>();
        let task = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(task.clone());
        // Pending once, handing its waker out; ready after that.
        let mut first = true;
        let mut f = std::pin::pin!(RePoll::new(std::future::poll_fn(move |cx| {
            if std::mem::take(&mut first) {
                let _ = tx.send(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })));
        assert!(
            f.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        let inner = rx.recv().expect("the waker");
        std::thread::spawn(move || inner.wake())
            .join()
            .expect("woken");
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        assert!(f.as_mut().poll(&mut Context::from_waker(&waker)).is_ready());
    }
}
