//! Heatmaps and learning curves, each as PNG and SVG (plotters; the PNG through the `png`
//! crate from plotters' RGB buffer).
//!
//! Text needs a TrueType font: the first of [`FONT_PATHS`] that exists (or the file named by
//! `RTB_STUDY_FONT`) is registered once; without one, the pictures are skipped with an error
//! (the results are unaffected).
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::grid::Grid;
use super::run::{MethodSummary, StudyOutput, Table};
use super::StudyError;

/// Where a sans-serif TrueType font is looked for (Debian's `fonts-dejavu-core` first).
pub const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Registers the first TrueType font found as plotters' `sans-serif`, once per process, for
/// every picture the crate draws (the study's and the continuous experiment's); the error
/// says which paths were tried.
pub fn register_font() -> Result<(), String> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let mut paths: Vec<PathBuf> = std::env::var_os("RTB_STUDY_FONT")
            .map(PathBuf::from)
            .into_iter()
            .collect();
        paths.extend(FONT_PATHS.iter().map(PathBuf::from));
        for p in &paths {
            if let Ok(bytes) = std::fs::read(p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(format!(
            "no TrueType font found (tried {paths:?}; set RTB_STUDY_FONT): pictures skipped"
        ))
    })
    .clone()
}

fn ensure_font() -> Result<(), StudyError> {
    register_font().map_err(StudyError::Io)
}

fn perr<E: std::fmt::Debug>(e: E) -> StudyError {
    StudyError::Io(format!("plotting: {e:?}"))
}

/// Viridis-like colour map on `[0, 1]`.
fn colormap(v: f64) -> RGBColor {
    const STOPS: [(f64, [f64; 3]); 5] = [
        (0.0, [68.0, 1.0, 84.0]),
        (0.25, [59.0, 82.0, 139.0]),
        (0.5, [33.0, 145.0, 140.0]),
        (0.75, [94.0, 201.0, 98.0]),
        (1.0, [253.0, 231.0, 37.0]),
    ];
    let v = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let k = STOPS.iter().position(|s| s.0 >= v).unwrap_or(4).max(1);
    let (a, b) = (STOPS[k - 1], STOPS[k]);
    let f = (v - a.0) / (b.0 - a.0);
    let c = |i: usize| (a.1[i] + f * (b.1[i] - a.1[i])).round() as u8;
    RGBColor(c(0), c(1), c(2))
}

/// Draws heatmap panels (title, pmf over cells), each on its own colour scale.
fn draw_heatmaps<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    grid: &Grid,
    panels: &[(String, &[f64])],
    cols: usize,
) -> Result<(), StudyError> {
    root.fill(&WHITE).map_err(perr)?;
    let rows = panels.len().div_ceil(cols);
    let areas = root.split_evenly((rows, cols));
    let (h, c) = (grid.half_width(), grid.cell_size());
    let lim = h + c / 2.0;
    for ((title, values), area) in panels.iter().zip(areas.iter()) {
        let vmax = values.iter().copied().fold(0.0, f64::max);
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 15))
            .margin(4)
            .x_label_area_size(18)
            .y_label_area_size(24)
            .build_cartesian_2d(-lim..lim, -lim..lim)
            .map_err(perr)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(5)
            .y_labels(5)
            .label_style(("sans-serif", 10))
            .draw()
            .map_err(perr)?;
        chart
            .draw_series((0..grid.cells()).map(|k| {
                let [x, y] = grid.center(k);
                let v = if vmax > 0.0 { values[k] / vmax } else { 0.0 };
                Rectangle::new(
                    [(x - c / 2.0, y - c / 2.0), (x + c / 2.0, y + c / 2.0)],
                    colormap(v).filled(),
                )
            }))
            .map_err(perr)?;
    }
    root.present().map_err(perr)
}

/// One curve panel: a metric over trajectories, per method mean ± std (log scale).
struct CurvePanel<'a> {
    title: &'static str,
    metric: usize,
    rows: &'a [&'a MethodSummary],
}

const COLORS: [RGBColor; 11] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(127, 127, 127),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 0),
];

fn draw_curves<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panels: &[CurvePanel<'_>],
) -> Result<(), StudyError> {
    root.fill(&WHITE).map_err(perr)?;
    let areas = root.split_evenly((panels.len().div_ceil(2), 2));
    for (p, area) in panels.iter().zip(areas.iter()) {
        let methods = p.rows;
        let xmax = methods
            .iter()
            .flat_map(|m| m.curves.iteration.last().copied())
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let vals = methods
            .iter()
            .flat_map(|m| m.curves.metrics[p.metric].mean.iter().copied())
            .filter(|v| *v > 0.0 && v.is_finite());
        let (lo, hi) = vals.fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
        let (lo, hi) = if lo.is_finite() && hi > lo {
            (lo / 1.5, hi * 1.5)
        } else {
            (1e-3, 1.0)
        };
        let mut chart = ChartBuilder::on(area)
            .caption(p.title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..xmax, (lo..hi).log_scale())
            .map_err(perr)?;
        chart
            .configure_mesh()
            .x_desc("optimizer steps")
            .x_labels(5)
            .y_labels(6)
            .label_style(("sans-serif", 11))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.2e}"))
            .draw()
            .map_err(perr)?;
        for (k, m) in methods.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            // RTB is drawn wider: Trust-PCL at β = 1 runs the same update and lies on top.
            let width = if m.name == "rtb" { 5 } else { 2 };
            let c = &m.curves.metrics[p.metric];
            let xs: Vec<f64> = m.curves.iteration.iter().map(|&t| t as f64).collect();
            let clamp = |v: f64| v.clamp(lo, hi);
            if m.seeds > 1 {
                let mut band: Vec<(f64, f64)> = xs
                    .iter()
                    .zip(c.mean.iter().zip(&c.std))
                    .map(|(&x, (mu, s))| (x, clamp(mu + s)))
                    .collect();
                band.extend(
                    xs.iter()
                        .zip(c.mean.iter().zip(&c.std))
                        .rev()
                        .map(|(&x, (mu, s))| (x, clamp(mu - s))),
                );
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        band,
                        color.mix(0.15).filled(),
                    )))
                    .map_err(perr)?;
            }
            chart
                .draw_series(LineSeries::new(
                    xs.iter().zip(&c.mean).map(|(&x, &y)| (x, clamp(y))),
                    color.stroke_width(width),
                ))
                .map_err(perr)?
                .label(m.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 11))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(perr)?;
    }
    root.present().map_err(perr)
}

/// Draws `draw` into `base.svg` and `base.png` (size `w × h`).
fn both(
    base: &Path,
    (w, h): (u32, u32),
    draw_svg: impl Fn(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), StudyError>,
    draw_png: impl Fn(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), StudyError>,
) -> Result<Vec<PathBuf>, StudyError> {
    let svg = base.with_extension("svg");
    {
        let root = SVGBackend::new(&svg, (w, h)).into_drawing_area();
        draw_svg(&root)?;
    }
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw_png(&root)?;
    }
    let png = base.with_extension("png");
    let file = std::fs::File::create(&png)
        .map_err(|e| StudyError::Io(format!("{}: {e}", png.display())))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Best);
    let mut writer = enc.write_header().map_err(perr)?;
    writer.write_image_data(&buf).map_err(perr)?;
    writer.finish().map_err(perr)?;
    Ok(vec![png, svg])
}

/// Writes every picture under `dir`; returns the files written.
///
/// - `marginals.{png,svg}`: prior, target and each method's learned terminal marginal (the
///   first seed), one panel each;
/// - `heatmap-<name>.{png,svg}`: the same panels one per file;
/// - `curves.{png,svg}`: KL(target‖q), KL(q‖target), TV and the J gap over optimizer steps,
///   mean ± std over seeds, for the main table; `curves-offpolicy` for on-policy RTB and
///   every off-policy RTB row (behaviours, losses); `curves-exact` for the exact
///   expected-gradient runs.
pub fn write_pictures(dir: &Path, out: &StudyOutput) -> Result<Vec<PathBuf>, StudyError> {
    ensure_font()?;
    let grid = out.dag.grid();
    let mut panels: Vec<(String, String, &[f64])> = vec![
        (
            "prior".into(),
            "prior (25 modes)".into(),
            out.dag.prior_pmf(),
        ),
        (
            "target".into(),
            "target (9 modes)".into(),
            &out.reference.target,
        ),
    ];
    for (m, marg) in &out.marginals {
        let kl = out
            .results
            .methods
            .iter()
            .find(|s| &s.name == m)
            .and_then(|s| s.runs.first())
            .map(|r| r.metrics.kl_target_to_model)
            .unwrap_or(f64::NAN);
        let file: String = m
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        panels.push((file, format!("{m} (KL {kl:.3})"), marg));
    }
    let mut files = Vec::new();
    let all: Vec<(String, &[f64])> = panels.iter().map(|(_, t, v)| (t.clone(), *v)).collect();
    let cols = 3;
    let rows = all.len().div_ceil(cols) as u32;
    files.extend(both(
        &dir.join("marginals"),
        (cols as u32 * 260, rows * 260),
        |r| draw_heatmaps(r, grid, &all, cols),
        |r| draw_heatmaps(r, grid, &all, cols),
    )?);
    for (name, title, v) in &panels {
        let one = [(title.clone(), *v)];
        files.extend(both(
            &dir.join(format!("heatmap-{name}")),
            (360, 360),
            |r| draw_heatmaps(r, grid, &one, 1),
            |r| draw_heatmaps(r, grid, &one, 1),
        )?);
    }
    let rows = &out.results.methods;
    let pick = |f: &dyn Fn(&MethodSummary) -> bool| -> Vec<&MethodSummary> {
        rows.iter().filter(|m| f(m)).collect()
    };
    let sets: [(&str, Vec<&MethodSummary>); 3] = [
        ("curves", pick(&|m| m.table == Table::Main)),
        (
            "curves-offpolicy",
            pick(&|m| {
                (m.method == "rtb" && m.table == Table::Main)
                    || (m.method == "rtb-offpolicy"
                        && matches!(m.table, Table::Main | Table::Behaviours))
                    || (m.table == Table::Losses && m.method == "rtb-offpolicy")
            }),
        ),
        ("curves-exact", pick(&|m| m.table == Table::Exact)),
    ];
    for (name, set) in &sets {
        if set.is_empty() {
            continue;
        }
        let curve_panels = [
            ("KL(target ‖ q)", 0),
            ("KL(q ‖ target)", 1),
            ("total variation", 2),
            ("J gap = α log Z* − J(q)", 4),
        ]
        .map(|(title, metric)| CurvePanel {
            title,
            metric,
            rows: set,
        });
        files.extend(both(
            &dir.join(name),
            (1000, 720),
            |r| draw_curves(r, &curve_panels),
            |r| draw_curves(r, &curve_panels),
        )?);
    }
    Ok(files)
}
