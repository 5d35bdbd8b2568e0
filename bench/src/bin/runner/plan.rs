//! What the runner measures: the servers and the cells of the matrix.

use serde::Serialize;

/// How a server's binary is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum Build {
    /// A binary of this crate (`target/release/NAME`).
    BenchBin,
    /// wsroute's `examples/echo` (`target/release/examples/echo`).
    Example,
}

/// A server's part in the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum Role {
    /// Raw TCP: the limit.
    Limit,
    /// Another websocket library.
    Peer,
    /// wsroute itself.
    Subject,
}

/// One server under test.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Server {
    /// The name on the command line (`--servers`) and in the JSON.
    pub(crate) name: &'static str,
    /// The column heading in tables and the plot.
    pub(crate) short: &'static str,
    /// What it is, for the legend.
    pub(crate) what: &'static str,
    pub(crate) build: Build,
    pub(crate) role: Role,
    /// Plain TCP: the load generator skips the handshake.
    pub(crate) raw: bool,
}

/// Every server, in table order.
pub(crate) const SERVERS: [Server; 5] = [
    Server {
        name: "tcp-echo",
        short: "tcp",
        what: "raw tokio TCP echo of the same bytes (the limit)",
        build: Build::BenchBin,
        role: Role::Limit,
        raw: true,
    },
    Server {
        name: "axum-echo",
        short: "axum",
        what: "axum 0.8 built-in `ws` (tokio-tungstenite)",
        build: Build::BenchBin,
        role: Role::Peer,
        raw: false,
    },
    Server {
        name: "fastwebsockets-echo",
        short: "fastws",
        what: "fastwebsockets 0.10 (`upgrade`, FragmentCollector)",
        build: Build::BenchBin,
        role: Role::Peer,
        raw: false,
    },
    Server {
        name: "wsroute-hand-echo",
        short: "ws-hand",
        what: "wsroute, hand-written `impl Route`",
        build: Build::BenchBin,
        role: Role::Subject,
        raw: false,
    },
    Server {
        name: "wsroute-echo",
        short: "wsroute",
        what: "wsroute `examples/echo` (the route macro)",
        build: Build::Example,
        role: Role::Subject,
        raw: false,
    },
];

/// One cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Cell {
    pub(crate) connections: usize,
    pub(crate) size: usize,
    pub(crate) text: bool,
    pub(crate) in_flight: usize,
}

impl Cell {
    /// "64 × 1 KiB text", "64 × 16 B bin, 8 in flight".
    pub(crate) fn label(&self) -> String {
        let mut label = format!(
            "{} × {} {}",
            self.connections,
            size_label(self.size),
            if self.text { "text" } else { "bin" }
        );
        if self.in_flight > 1 {
            label.push_str(&format!(", {} in flight", self.in_flight));
        }
        label
    }

    /// A short label for the plot's axis: "64c 1K bin", "64c 16B bin ×8".
    pub(crate) fn short_label(&self) -> String {
        let size = match self.size {
            s if s >= 1024 && s % 1024 == 0 => format!("{}K", s / 1024),
            s => format!("{s}B"),
        };
        let mut label = format!(
            "{}c {size} {}",
            self.connections,
            if self.text { "txt" } else { "bin" }
        );
        if self.in_flight > 1 {
            label.push_str(&format!(" ×{}", self.in_flight));
        }
        label
    }
}

pub(crate) fn size_label(size: usize) -> String {
    match size {
        s if s >= 1024 && s % 1024 == 0 => format!("{} KiB", s / 1024),
        s => format!("{s} B"),
    }
}

/// The full matrix: {1, 64, 1000} connections × {16 B, 1 KiB, 64 KiB} ×
/// {binary, text}, then the pipelined cells (64 × 16 B, 8 in flight).
pub(crate) fn full_matrix() -> Vec<Cell> {
    let mut cells = Vec::new();
    for connections in [1, 64, 1000] {
        for size in [16, 1024, 64 * 1024] {
            for text in [false, true] {
                cells.push(Cell {
                    connections,
                    size,
                    text,
                    in_flight: 1,
                });
            }
        }
    }
    for text in [false, true] {
        cells.push(pipelined(text));
    }
    cells
}

fn pipelined(text: bool) -> Cell {
    Cell {
        connections: 64,
        size: 16,
        text,
        in_flight: 8,
    }
}

/// `--quick`: one cell per corner of the matrix, enough to see that every
/// server and every path of the load generator works.
pub(crate) fn quick_matrix() -> Vec<Cell> {
    let cell = |connections, size, text| Cell {
        connections,
        size,
        text,
        in_flight: 1,
    };
    vec![
        cell(1, 16, false),
        cell(64, 16, false),
        cell(64, 1024, true),
        cell(1000, 16, false),
        cell(1000, 64 * 1024, false),
        pipelined(false),
    ]
}
