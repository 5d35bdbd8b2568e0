use wsroute::{Connection, Message};

#[derive(Default)]
struct Chat {
    seen: std::rc::Rc<std::cell::Cell<u32>>,
}

#[wsroute::websocket_route("/ws")]
impl Chat {
    fn message(&mut self, _conn: &Connection, _msg: Message) {
        self.seen.set(self.seen.get() + 1);
    }
}

// Never mounted: the mistake is reported all the same.
fn main() {}
