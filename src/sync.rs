//! The one lock helper.
//!
//! A `std::sync::Mutex` is poisoned when a thread panics while holding it; `lock()` then
//! returns an error on every later call. Every mutex in this crate guards data that stays
//! valid between statements (a filter table, a latency ring, a connection's in-flight
//! count, the head history), so a panic elsewhere must not turn into a panic on every
//! later request: [`lock`] takes the guard either way.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, recovering the guard if a panic poisoned it.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_poisoned_mutex_still_locks() {
        let mutex = Arc::new(Mutex::new(vec![1]));
        let held = Arc::clone(&mutex);
        let panicked = std::thread::spawn(move || {
            let mut guard = held.lock().unwrap();
            guard.push(2);
            panic!("poison the lock");
        })
        .join();
        assert!(panicked.is_err());
        assert!(mutex.is_poisoned());

        let mut guard = lock(&mutex);
        assert_eq!(*guard, [1, 2]);
        guard.push(3);
        drop(guard);
        assert_eq!(*lock(&mutex), [1, 2, 3]);
    }
}
