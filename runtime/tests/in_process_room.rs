//! The acceptance test of `wsroute::test`: two users in a room, with no TCP
//! socket in the process before, during or after. Alone in its binary, so
//! that no other test's sockets are counted.

use std::collections::HashSet;

use wsroute::test::TestServer;
use wsroute::{Config, Connection, Message, RouterExt, WebSockets};

#[derive(Default)]
struct Room;

#[wsroute::websocket_route("/room")]
impl Room {
    fn open(&mut self, conn: &Connection) {
        conn.subscribe("room").unwrap();
        conn.send_text("welcome").unwrap();
    }

    fn message(&mut self, conn: &Connection, msg: Message) {
        conn.publish("room", msg);
    }
}

/// The inodes of the TCP sockets (any state: listening, connected) this
/// process holds: its socket descriptors that `/proc/net/tcp{,6}` lists.
/// `ss` would show every process's, and the machine is shared.
fn own_tcp_sockets() -> HashSet<u64> {
    let mut own = HashSet::new();
    for fd in std::fs::read_dir("/proc/self/fd").unwrap() {
        let Ok(target) = std::fs::read_link(fd.unwrap().path()) else {
            continue; // the directory's own descriptor, closed since
        };
        let target = target.to_string_lossy();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|rest| rest.strip_suffix(']'))
        {
            own.insert(inode.parse().unwrap());
        }
    }
    let mut tcp = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue; // no IPv6 in this kernel
        };
        for line in text.lines().skip(1) {
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            let inode: u64 = line.split_whitespace().nth(9).unwrap().parse().unwrap();
            tcp.insert(inode);
        }
    }
    own.intersection(&tcp).copied().collect()
}

#[tokio::test]
async fn two_users_talk_in_a_room_with_no_tcp_socket_opened() {
    assert_eq!(own_tcp_sockets(), HashSet::new(), "before the test");
    let sockets = WebSockets::new(Config::default());
    let server = TestServer::new(axum::Router::new().websocket::<Room>(&sockets));
    let mut ann = server.connect("/room").await;
    let mut bob = server.connect("/room").await;
    assert_eq!(ann.recv_text().await, "welcome");
    assert_eq!(bob.recv_text().await, "welcome");

    ann.send_text("hi bob").await;
    assert_eq!(bob.recv_text().await, "hi bob");
    bob.send_text("hi ann").await;
    assert_eq!(ann.recv_text().await, "hi ann");
    assert_eq!(own_tcp_sockets(), HashSet::new(), "with both connected");

    for user in [&mut ann, &mut bob] {
        user.close(wsroute::CloseCode::NORMAL, "bye").await;
        assert_eq!(user.closed().await.code, wsroute::CloseCode::NORMAL);
    }
    sockets.shutdown().await;
    assert_eq!(own_tcp_sockets(), HashSet::new(), "after the test");
}
