//! Pictures of a run (PNG, plotters): samples beside the exact target (as the paper's
//! `plot_step`, a scatter over the target's density), and learning curves.
//!
//! Text needs a TrueType font: the first of [`crate::study::plot::FONT_PATHS`] that exists
//! (or `RTB_STUDY_FONT`) is registered once; without one the pictures are skipped with an
//! error (the results are unaffected).
use super::run::RunResult;
use super::target::Mixture;
use super::{ContinuousError, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

fn perr<E: std::fmt::Debug>(e: E) -> ContinuousError {
    ContinuousError::Plot(format!("{e:?}"))
}

fn ensure_font() -> Result<()> {
    // One registration for the whole crate (the study's pictures share it).
    crate::study::plot::register_font().map_err(ContinuousError::Plot)
}

fn write_png(path: &Path, (w, h): (u32, u32), buf: &[u8]) -> Result<()> {
    let file = std::fs::File::create(path)?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(perr)?;
    writer.write_image_data(buf).map_err(perr)?;
    writer.finish().map_err(perr)?;
    Ok(())
}

const BOUND: f64 = 13.0;

fn scatter_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    density: &Mixture,
    points: &[[f64; 2]],
) -> Result<()> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(6)
        .x_label_area_size(22)
        .y_label_area_size(28)
        .build_cartesian_2d(-BOUND..BOUND, -BOUND..BOUND)
        .map_err(perr)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .label_style(("sans-serif", 10))
        .draw()
        .map_err(perr)?;
    let n = 80;
    let step = 2.0 * BOUND / n as f64;
    let mut cells = Vec::with_capacity(n * n);
    let mut max = f64::MIN;
    for i in 0..n {
        for j in 0..n {
            let x = -BOUND + (i as f64 + 0.5) * step;
            let y = -BOUND + (j as f64 + 0.5) * step;
            let v = density.log_prob([x, y]).exp();
            max = max.max(v);
            cells.push((x, y, v));
        }
    }
    chart
        .draw_series(cells.iter().map(|&(x, y, v)| {
            let shade = 255 - (180.0 * (v / max).sqrt()).round() as u8;
            Rectangle::new(
                [
                    (x - step / 2.0, y - step / 2.0),
                    (x + step / 2.0, y + step / 2.0),
                ],
                RGBColor(shade, shade, 255).filled(),
            )
        }))
        .map_err(perr)?;
    chart
        .draw_series(
            points
                .iter()
                .filter(|p| p[0].abs() < BOUND && p[1].abs() < BOUND)
                .map(|p| Circle::new((p[0], p[1]), 1, RGBColor(200, 30, 30).filled())),
        )
        .map_err(perr)?;
    Ok(())
}

/// `samples.png`: exact target samples, the prior's samples, then each run's final samples,
/// one panel each over the target density. Returns the file written.
pub fn write_samples(
    dir: &Path,
    target_samples: &[[f64; 2]],
    prior_samples: &[[f64; 2]],
    runs: &[&RunResult],
) -> Result<PathBuf> {
    ensure_font()?;
    let target = Mixture::target9();
    let prior = Mixture::prior25();
    let mut panels: Vec<(String, &Mixture, &[[f64; 2]])> = vec![
        ("exact target".into(), &target, target_samples),
        ("prior (pretrained)".into(), &prior, prior_samples),
    ];
    for r in runs {
        panels.push((
            format!("{} (seed {})", r.method, r.seed),
            &target,
            &r.final_eval.terminals,
        ));
    }
    let cols = 4.min(panels.len()) as u32;
    let rows = panels.len().div_ceil(cols as usize) as u32;
    let (w, h) = (300 * cols, 300 * rows);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(perr)?;
        let areas = root.split_evenly((rows as usize, cols as usize));
        for ((title, dens, pts), area) in panels.iter().zip(areas.iter()) {
            scatter_panel(area, title, dens, pts)?;
        }
        root.present().map_err(perr)?;
    }
    let path = dir.join("samples.png");
    write_png(&path, (w, h), &buf)?;
    Ok(path)
}

type Series = (String, Vec<(f64, f64)>);

fn curve_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[Series],
    reference: Option<f64>,
) -> Result<()> {
    let pts = series.iter().flat_map(|s| s.1.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        if y.is_finite() {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    if let Some(r) = reference {
        y0 = y0.min(r);
        y1 = y1.max(r);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = ((y1 - y0) * 0.05).max(1e-3);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 15))
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(44)
        .build_cartesian_2d(x0..x1.max(x0 + 1.0), (y0 - pad)..(y1 + pad))
        .map_err(perr)?;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 10))
        .x_desc("iteration")
        .draw()
        .map_err(perr)?;
    if let Some(r) = reference {
        chart
            .draw_series(LineSeries::new([(x0, r), (x1, r)], BLACK.stroke_width(1)))
            .map_err(perr)?;
    }
    for (i, (name, s)) in series.iter().enumerate() {
        let c = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(s.iter().copied(), c.stroke_width(2)))
            .map_err(perr)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 10))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(perr)?;
    Ok(())
}

/// Mean over seeds of `f` at each recorded iteration, per method.
fn averaged(runs: &[RunResult], f: &dyn Fn(&RunResult) -> Vec<(f64, f64)>) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for r in runs {
        let pts = f(r);
        if pts.is_empty() {
            continue;
        }
        match out.iter_mut().find(|s| s.0 == r.method) {
            Some(s) => {
                for (a, b) in s.1.iter_mut().zip(&pts) {
                    a.1 += b.1;
                }
            }
            None => out.push((r.method.clone(), pts)),
        }
    }
    for s in out.iter_mut() {
        let n = runs.iter().filter(|r| r.method == s.0).count() as f64;
        s.1.iter_mut().for_each(|p| p.1 /= n);
    }
    out
}

/// `curves.png`: the learned log Z (true value 0), ELBO, mode-mass TV and energy distance
/// along training, and the paper's `kl_div` statistic, mean over seeds.
pub fn write_curves(dir: &Path, runs: &[RunResult]) -> Result<PathBuf> {
    ensure_font()?;
    let log_z = averaged(runs, &|r| {
        r.curve
            .iter()
            .filter_map(|c| c.log_z.map(|z| (c.iteration as f64, z)))
            .collect()
    });
    let kl = averaged(runs, &|r| {
        r.curve
            .iter()
            .map(|c| (c.iteration as f64, c.kl_div))
            .collect()
    });
    let ev = |g: fn(&super::metrics::Evaluation) -> f64| {
        averaged(runs, &move |r: &RunResult| {
            let mut v: Vec<(f64, f64)> = r
                .evals
                .iter()
                .map(|e| (e.iteration as f64, g(&e.eval)))
                .collect();
            v.push((r.iterations as f64, g(&r.final_eval)));
            v
        })
    };
    let elbo = ev(|e| e.elbo);
    let tv = ev(|e| e.mode_tv);
    let ed = ev(|e| e.energy_distance);
    let (w, h) = (1500u32, 700u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(perr)?;
        let a = root.split_evenly((2, 3));
        curve_panel(&a[0], "learned log Z (true 0)", &log_z, Some(0.0))?;
        curve_panel(&a[1], "ELBO (log Z = 0 is the bound)", &elbo, Some(0.0))?;
        curve_panel(&a[2], "mode-mass TV to target", &tv, Some(0.0))?;
        curve_panel(&a[3], "energy distance to target", &ed, Some(0.0))?;
        curve_panel(&a[4], "paper's kl_div (training batch)", &kl, None)?;
        root.present().map_err(perr)?;
    }
    let path = dir.join("curves.png");
    write_png(&path, (w, h), &buf)?;
    Ok(path)
}
