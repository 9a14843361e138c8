//! A gate a test opens, in place of sleeps and clocks, for code that calls back on its own thread (the worker calls
//! `notify` right after each response, before it looks at its requests again).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

/// Once armed, the next [`Gate::pass`] waits until the test calls [`Gate::open`]; every other pass goes straight
/// through. Whatever the test does between arming and opening happens while the other thread is held at that point,
/// however fast or slow either thread runs.
#[derive(Debug, Default)]
pub struct Gate {
    armed: AtomicBool,
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    /// The other thread's side: held here once after [`Gate::arm`], until [`Gate::open`].
    pub fn pass(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            let mut open = self.open.lock().unwrap();
            while !*open {
                open = self.opened.wait(open).unwrap();
            }
            *open = false;
        }
    }

    /// Holds the next pass.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Lets the held pass (or the next armed one) through.
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}
