//! A gate a test opens, in place of sleeps and clocks, for code that calls back on its own thread (the worker calls
//! `notify` right after each response, before it looks at its requests again).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

/// Once armed, the next [`Gate::pass`] waits until the test calls [`Gate::open`]; every other pass goes straight
/// through. Whatever the test does between arming and opening happens while the other thread is held at that point,
/// however fast or slow either thread runs. The other thread may still be on its way to the pass of a response the
/// test has already received: [`Gate::wait_for_passes`] lets the test arm only once that pass is behind it.
#[derive(Debug, Default)]
pub struct Gate {
    armed: AtomicBool,
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    open: bool,
    passes: usize,
    /// The other thread is held in a pass now.
    holding: bool,
}

impl Gate {
    /// The other thread's side: held here once after [`Gate::arm`], until [`Gate::open`].
    pub fn pass(&self) {
        let held = self.armed.swap(false, Ordering::SeqCst);
        let mut state = self.state.lock().unwrap();
        if held {
            state.holding = true;
            self.changed.notify_all();
            while !state.open {
                state = self.changed.wait(state).unwrap();
            }
            state.open = false;
            state.holding = false;
        }
        state.passes += 1;
        self.changed.notify_all();
    }

    /// Waits until `count` passes in all have gone through (one per response the test has received), so that
    /// arming afterwards holds the next response's pass and not one of those.
    pub fn wait_for_passes(&self, count: usize) {
        let mut state = self.state.lock().unwrap();
        while state.passes < count {
            state = self.changed.wait(state).unwrap();
        }
    }

    /// Waits until the other thread is held in a pass; arming then holds the pass after it.
    pub fn wait_until_held(&self) {
        let mut state = self.state.lock().unwrap();
        while !state.holding {
            state = self.changed.wait(state).unwrap();
        }
    }

    /// Holds the next pass.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Lets the held pass (or the next armed one) through.
    pub fn open(&self) {
        self.state.lock().unwrap().open = true;
        self.changed.notify_all();
    }
}
