//! The events a test route saw, as text, shared between the route (as the
//! router's state) and the test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
pub(crate) struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub(crate) fn push(&self, event: String) {
        self.0.lock().unwrap().push(event);
    }

    /// Every event so far.
    pub(crate) fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until the `close` event is in (and a little longer, so that a
    /// duplicate close would show), then returns all events.
    pub(crate) async fn until_closed(&self) -> Vec<String> {
        for _ in 0..500 {
            if self.events().iter().any(|e| e.starts_with("close")) {
                tokio::time::sleep(Duration::from_millis(50)).await;
                return self.events();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no close event: {:?}", self.events());
    }
}
