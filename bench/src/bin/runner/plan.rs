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
    /// Runs in the uncompressed matrix unless `--servers` says otherwise.
    pub(crate) plain: bool,
    /// Runs in the compressed cells unless `--servers` says otherwise:
    /// the servers with permessage-deflate, and tcp-echo as the limit.
    pub(crate) deflate: bool,
    /// Serves over TLS with `--tls` (the TLS cells, `--cells tls`).
    pub(crate) tls: bool,
}

/// Every server, in table order.
pub(crate) const SERVERS: [Server; 6] = [
    Server {
        name: "tcp-echo",
        short: "tcp",
        what: "raw tokio TCP echo of the same bytes (the limit)",
        build: Build::BenchBin,
        role: Role::Limit,
        raw: true,
        plain: true,
        deflate: true,
        tls: true,
    },
    Server {
        name: "axum-echo",
        short: "axum",
        what: "axum 0.8 built-in `ws` (tokio-tungstenite)",
        build: Build::BenchBin,
        role: Role::Peer,
        raw: false,
        plain: true,
        deflate: false,
        tls: true,
    },
    Server {
        name: "fastwebsockets-echo",
        short: "fastws",
        what: "fastwebsockets 0.10 (`upgrade`, FragmentCollector)",
        build: Build::BenchBin,
        role: Role::Peer,
        raw: false,
        plain: true,
        deflate: false,
        tls: true,
    },
    Server {
        name: "sockudo-echo",
        short: "sockudo",
        what: "sockudo-ws 3.1 with permessage-deflate (no context takeover either way, \
               15-bit windows, zlib level 6; messages under 32 B sent plain)",
        build: Build::BenchBin,
        role: Role::Peer,
        raw: false,
        plain: false,
        deflate: true,
        tls: false,
    },
    Server {
        name: "wsroute-hand-echo",
        short: "ws-hand",
        what: "wsroute, hand-written `impl Route`",
        build: Build::BenchBin,
        role: Role::Subject,
        raw: false,
        plain: true,
        deflate: true,
        tls: true,
    },
    Server {
        name: "wsroute-echo",
        short: "wsroute",
        what: "wsroute `examples/echo` (the route macro)",
        build: Build::Example,
        role: Role::Subject,
        raw: false,
        plain: true,
        deflate: true,
        tls: false,
    },
];

/// One cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Cell {
    pub(crate) connections: usize,
    pub(crate) size: usize,
    pub(crate) text: bool,
    pub(crate) in_flight: usize,
    /// A compressed cell: realistic JSON text, permessage-deflate offered
    /// (`loadgen --content json --deflate`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) deflate: bool,
    /// A TLS cell: server and load generator run with `--tls`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) tls: bool,
}

impl Cell {
    /// "64 × 1 KiB text", "64 × 16 B bin, 8 in flight", "64 × 1 KiB json".
    pub(crate) fn label(&self) -> String {
        if self.deflate {
            return format!("{} × {} json", self.connections, size_label(self.size));
        }
        let mut label = format!(
            "{} × {} {}",
            self.connections,
            size_label(self.size),
            if self.text { "text" } else { "bin" }
        );
        if self.in_flight > 1 {
            label.push_str(&format!(", {} in flight", self.in_flight));
        }
        if self.tls {
            label.push_str(", TLS");
        }
        label
    }

    /// A short label for the plot's axis: "64c 1K bin", "64c 16B bin ×8".
    pub(crate) fn short_label(&self) -> String {
        let size = match self.size {
            s if s >= 1024 && s % 1024 == 0 => format!("{}K", s / 1024),
            s => format!("{s}B"),
        };
        let kind = match (self.deflate, self.text) {
            (true, _) => "json",
            (false, true) => "txt",
            (false, false) => "bin",
        };
        let mut label = format!("{}c {size} {kind}", self.connections);
        if self.in_flight > 1 {
            label.push_str(&format!(" ×{}", self.in_flight));
        }
        if self.tls {
            label.push_str(" tls");
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
                    deflate: false,
                    tls: false,
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
        deflate: false,
        tls: false,
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
        deflate: false,
        tls: false,
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

/// The compressed cells: {1, 64, 1000} connections × realistic JSON text
/// of {256 B, 1 KiB, 16 KiB}, one message in flight, permessage-deflate
/// offered.
pub(crate) fn deflate_matrix() -> Vec<Cell> {
    let mut cells = Vec::new();
    for connections in [1, 64, 1000] {
        for size in [256, 1024, 16 * 1024] {
            cells.push(deflate_cell(connections, size));
        }
    }
    cells
}

/// `--quick` of the compressed cells: each size once, each connection
/// count once.
pub(crate) fn quick_deflate_matrix() -> Vec<Cell> {
    vec![
        deflate_cell(1, 256),
        deflate_cell(64, 16 * 1024),
        deflate_cell(1000, 1024),
    ]
}

fn deflate_cell(connections: usize, size: usize) -> Cell {
    Cell {
        connections,
        size,
        text: true,
        in_flight: 1,
        deflate: true,
        tls: false,
    }
}

/// The TLS cells: {1, 64, 1000} connections × binary {16 B, 1 KiB,
/// 64 KiB}, one in flight, every connection TLS 1.3 with the same rustls
/// on both ends ([`wsroute_bench::tls`]).
pub(crate) fn tls_matrix() -> Vec<Cell> {
    let mut cells = Vec::new();
    for connections in [1, 64, 1000] {
        for size in [16, 1024, 64 * 1024] {
            cells.push(tls_cell(connections, size));
        }
    }
    cells
}

/// `--quick` of the TLS cells.
pub(crate) fn quick_tls_matrix() -> Vec<Cell> {
    vec![
        tls_cell(1, 16),
        tls_cell(64, 1024),
        tls_cell(1000, 64 * 1024),
    ]
}

fn tls_cell(connections: usize, size: usize) -> Cell {
    Cell {
        connections,
        size,
        text: false,
        in_flight: 1,
        deflate: false,
        tls: true,
    }
}

/// Which cells a run measures (`--cells`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Suites {
    /// The uncompressed matrix and its memory run (the default).
    Plain,
    /// Only the compressed cells and the memory run with deflate.
    Deflate,
    /// Both.
    All,
    /// Only the TLS cells, on the servers that take `--tls`, in the
    /// tables of the plain matrix (no memory run).
    Tls,
}

impl Suites {
    pub(crate) fn plain(self) -> bool {
        matches!(self, Self::Plain | Self::All | Self::Tls)
    }

    pub(crate) fn deflate(self) -> bool {
        matches!(self, Self::Deflate | Self::All)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_is_unchanged_and_the_compressed_cells_are_apart() {
        let matrix = full_matrix();
        assert_eq!(matrix.len(), 20);
        assert!(matrix.iter().all(|c| !c.deflate));
        assert!(quick_matrix().iter().all(|c| !c.deflate));
        let compressed = deflate_matrix();
        assert_eq!(compressed.len(), 9);
        assert!(
            compressed
                .iter()
                .all(|c| c.deflate && c.text && c.in_flight == 1)
        );
        assert_eq!(compressed[4].label(), "64 × 1 KiB json");
        let tls = tls_matrix();
        assert_eq!(tls.len(), 9);
        assert!(tls.iter().all(|c| c.tls && !c.deflate && !c.text));
        assert!(matrix.iter().chain(&compressed).all(|c| !c.tls));
        assert_eq!(tls[4].label(), "64 × 1 KiB bin, TLS");
        let over_tls: Vec<&str> = SERVERS.iter().filter(|s| s.tls).map(|s| s.name).collect();
        assert_eq!(
            over_tls,
            [
                "tcp-echo",
                "axum-echo",
                "fastwebsockets-echo",
                "wsroute-hand-echo"
            ]
        );
        // The plain matrix's servers are the ones it always had.
        let plain: Vec<&str> = SERVERS.iter().filter(|s| s.plain).map(|s| s.name).collect();
        assert_eq!(
            plain,
            [
                "tcp-echo",
                "axum-echo",
                "fastwebsockets-echo",
                "wsroute-hand-echo",
                "wsroute-echo"
            ]
        );
    }
}
