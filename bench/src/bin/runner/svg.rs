//! The throughput plot, written as SVG by hand: one group of bars per cell,
//! one bar per server, each bar the server's median throughput divided by
//! tcp-echo's in the same cell (or by the best server's, without
//! tcp-echo).

use std::fmt::Write;

use crate::plan::{Role, Server};
use crate::results::Results;
use crate::table::{Setup, rate};

/// Okabe–Ito colours, distinguishable with every common colour blindness.
const COLOURS: [&str; 8] = [
    "#999999", "#e69f00", "#56b4e9", "#009e73", "#d55e00", "#0072b2", "#cc79a7", "#f0e442",
];

const BAR: f64 = 13.0;
const GAP: f64 = 16.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 112.0;
const PLOT_H: f64 = 300.0;
const BOTTOM: f64 = 90.0;
/// Narrowest plot, so that the title and legend fit.
const MIN_WIDTH: f64 = 900.0;

pub(crate) fn render(setup: &Setup<'_>, results: &Results) -> String {
    let servers = setup.servers;
    let cells = setup.cells;
    let limit = servers.iter().find(|s| s.role == Role::Limit);
    // Groups spread out to fill the plot when there are few cells.
    let group_w = (servers.len() as f64 * BAR + GAP)
        .max((MIN_WIDTH - LEFT - RIGHT) / cells.len().max(1) as f64);
    let width = LEFT + RIGHT + cells.len() as f64 * group_w;
    let height = TOP + PLOT_H + BOTTOM;

    // Every bar's height as a ratio to the reference of its cell.
    let ratios: Vec<Vec<Option<f64>>> = cells
        .iter()
        .map(|cell| {
            let value = |s: &Server| results.throughput(cell, s).map(|t| t.median);
            let reference = match limit {
                Some(l) => value(l),
                None => servers.iter().filter_map(value).reduce(f64::max),
            };
            servers
                .iter()
                .map(|s| Some(value(s)? / reference.filter(|r| *r > 0.0)?))
                .collect()
        })
        .collect();
    let top_ratio = ratios
        .iter()
        .flatten()
        .flatten()
        .copied()
        .fold(1.2_f64, f64::max);
    let y_max = (top_ratio / 0.2).ceil() * 0.2;
    let y = |ratio: f64| TOP + PLOT_H * (1.0 - ratio / y_max);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="Helvetica, Arial, sans-serif" font-size="12">"##
    );
    let _ = writeln!(svg, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let reference = match limit {
        Some(l) => format!("{}'s", l.name),
        None => "the fastest server's".to_owned(),
    };
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="22" font-size="16" font-weight="bold">Echo throughput relative to {} (median of {} round{})</text>"##,
        escape(&reference),
        setup.rounds,
        if setup.rounds == 1 { "" } else { "s" }
    );
    let m = setup.machine;
    let lines = [
        format!(
            "{} ({} cores), {}, {} UTC, commit {}",
            m.cpu, m.cores, m.kernel, m.date, m.commit
        ),
        format!(
            "Server on one core, load generator on the other. Bars: messages/s ÷ {reference} \
             in the same cell (its rate above each group)."
        ),
    ];
    for (i, line) in lines.iter().enumerate() {
        let _ = writeln!(
            svg,
            r##"<text x="{LEFT}" y="{}" fill="#444">{}</text>"##,
            40 + 16 * i,
            escape(line)
        );
    }

    // Legend.
    let mut lx = LEFT;
    for (i, server) in servers.iter().enumerate() {
        let _ = writeln!(
            svg,
            r##"<rect x="{lx}" y="74" width="12" height="12" fill="{}"/><text x="{}" y="84">{}</text>"##,
            COLOURS[i % COLOURS.len()],
            lx + 16.0,
            escape(server.name)
        );
        lx += 24.0 + 7.0 * server.name.len() as f64;
    }

    // Grid and axis.
    let mut tick = 0.0;
    while tick <= y_max + 1e-9 {
        let ty = y(tick);
        let (stroke, dash) = if (tick - 1.0).abs() < 1e-9 {
            ("#333", r##" stroke-dasharray="5,3""##)
        } else {
            ("#ddd", "")
        };
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{ty:.1}" x2="{:.1}" y2="{ty:.1}" stroke="{stroke}"{dash}/><text x="{:.1}" y="{:.1}" text-anchor="end">{tick:.1}×</text>"##,
            width - RIGHT,
            LEFT - 6.0,
            ty + 4.0
        );
        tick += 0.2;
    }

    // Bars and cell labels.
    for (c, cell) in cells.iter().enumerate() {
        let gx = LEFT + GAP / 2.0 + c as f64 * group_w;
        for (i, ratio) in ratios[c].iter().enumerate() {
            let x = gx + i as f64 * BAR;
            match ratio {
                Some(r) => {
                    let top = y(r.min(y_max));
                    let _ = writeln!(
                        svg,
                        r##"<rect x="{x:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {:.2}×</title></rect>"##,
                        BAR - 1.0,
                        (TOP + PLOT_H - top).max(0.0),
                        COLOURS[i % COLOURS.len()],
                        escape(&format!("{} {}", servers[i].name, cell.label())),
                        r
                    );
                }
                None => {
                    let _ = writeln!(
                        svg,
                        r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#c00">×</text>"##,
                        x + BAR / 2.0,
                        TOP + PLOT_H - 3.0
                    );
                }
            }
        }
        let cx = gx + servers.len() as f64 * BAR / 2.0;
        let ly = TOP + PLOT_H + 14.0;
        let _ = writeln!(
            svg,
            r##"<text transform="translate({cx:.1},{ly:.1}) rotate(-35)" text-anchor="end">{}</text>"##,
            escape(&cell.short_label())
        );
        let reference = match limit {
            Some(l) => results.throughput(cell, l).map(|t| t.median),
            None => servers
                .iter()
                .filter_map(|s| results.throughput(cell, s).map(|t| t.median))
                .reduce(f64::max),
        };
        if let Some(reference) = reference {
            let _ = writeln!(
                svg,
                r##"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#555">{}/s</text>"##,
                TOP - 6.0,
                rate(reference)
            );
        }
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#333"/>"##,
        TOP + PLOT_H,
        width - RIGHT
    );
    svg.push_str("</svg>\n");
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
