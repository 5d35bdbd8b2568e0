//! Every run's outcome, and the medians and spreads the tables show.

use serde::Serialize;
use wsroute_bench::report::{LoadReport, MemoryReport};

use crate::plan::{Cell, Server};

/// One echo run of one server in one cell.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunRecord {
    pub(crate) round: usize,
    pub(crate) server: &'static str,
    pub(crate) cell: Cell,
    pub(crate) report: Option<LoadReport>,
    pub(crate) error: Option<String>,
}

/// One idle-memory run of one server.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MemoryRecord {
    pub(crate) round: usize,
    pub(crate) server: &'static str,
    /// The variant with permessage-deflate offered.
    pub(crate) deflate: bool,
    pub(crate) report: Option<MemoryReport>,
    pub(crate) error: Option<String>,
}

/// Median and range of one figure over the rounds.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) n: usize,
}

impl Spread {
    pub(crate) fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Self {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }
}

/// Everything measured in one invocation of the runner.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Results {
    pub(crate) runs: Vec<RunRecord>,
    pub(crate) memory: Vec<MemoryRecord>,
}

impl Results {
    fn reports<'a>(
        &'a self,
        cell: &'a Cell,
        server: &'a Server,
    ) -> impl Iterator<Item = &'a LoadReport> + 'a {
        self.runs
            .iter()
            .filter(move |r| r.server == server.name && r.cell == *cell)
            .filter_map(|r| r.report.as_ref())
    }

    pub(crate) fn throughput(&self, cell: &Cell, server: &Server) -> Option<Spread> {
        Spread::of(self.reports(cell, server).map(|r| r.msgs_per_s))
    }

    pub(crate) fn cpu_per_msg(&self, cell: &Cell, server: &Server) -> Option<Spread> {
        Spread::of(
            self.reports(cell, server)
                .filter_map(|r| r.server_cpu_us_per_msg),
        )
    }

    /// Median frame bytes per message, sent and received.
    pub(crate) fn wire_bytes(&self, cell: &Cell, server: &Server) -> Option<(f64, f64)> {
        let sent = Spread::of(
            self.reports(cell, server)
                .filter_map(|r| r.wire_sent_per_msg),
        )?;
        let received = Spread::of(
            self.reports(cell, server)
                .filter_map(|r| r.wire_received_per_msg),
        )?;
        Some((sent.median, received.median))
    }

    /// Whether a server's messages went out compressed in a cell (agreed,
    /// or raw TCP sent as if agreed); `None` without a report.
    pub(crate) fn compressed(&self, cell: &Cell, server: &Server) -> Option<bool> {
        self.reports(cell, server)
            .next()
            .map(|r| r.deflate.as_ref().is_some_and(|d| d.client_compressed))
    }

    /// What a server answered to the permessage-deflate offer, in any
    /// compressed cell or memory run ("not negotiated" if it declined).
    pub(crate) fn deflate_answer(&self, server: &Server) -> Option<String> {
        let echo = self
            .runs
            .iter()
            .filter(|r| r.server == server.name && r.cell.deflate)
            .filter_map(|r| r.report.as_ref()?.deflate.as_ref());
        let memory = self
            .memory
            .iter()
            .filter(|r| r.server == server.name && r.deflate)
            .filter_map(|r| r.report.as_ref()?.deflate.as_ref());
        echo.chain(memory)
            .next()
            .map(|d| d.answer_or_declined().to_owned())
    }

    pub(crate) fn latency(&self, cell: &Cell, server: &Server) -> Option<(f64, f64)> {
        let p50 = Spread::of(self.reports(cell, server).map(|r| r.p50_us))?;
        let p99 = Spread::of(self.reports(cell, server).map(|r| r.p99_us))?;
        Some((p50.median, p99.median))
    }

    /// Whether the load generator used ≥ 90 % of its core in the median
    /// run: then throughput shows its limit, and CPU per message decides.
    pub(crate) fn loadgen_bound(&self, cell: &Cell, server: &Server) -> bool {
        Spread::of(self.reports(cell, server).map(|r| r.loadgen_cpu_util))
            .is_some_and(|s| s.median >= 0.9)
    }

    /// The first error of a server in a cell, if every round failed.
    pub(crate) fn error(&self, cell: &Cell, server: &Server) -> Option<&str> {
        self.runs
            .iter()
            .find(|r| r.server == server.name && r.cell == *cell && r.error.is_some())
            .and_then(|r| r.error.as_deref())
    }

    pub(crate) fn memory_figure(
        &self,
        server: &Server,
        deflate: bool,
        figure: impl Fn(&MemoryReport) -> f64,
    ) -> Option<Spread> {
        Spread::of(
            self.memory
                .iter()
                .filter(|r| r.server == server.name && r.deflate == deflate)
                .filter_map(|r| r.report.as_ref())
                .map(figure),
        )
    }

    pub(crate) fn memory_error(&self, server: &Server, deflate: bool) -> Option<&str> {
        self.memory
            .iter()
            .find(|r| r.server == server.name && r.deflate == deflate && r.error.is_some())
            .and_then(|r| r.error.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::Spread;

    #[test]
    fn median_of_odd_and_even_counts() {
        let s = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert_eq!(Spread::of([4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert!(Spread::of([]).is_none());
    }
}
