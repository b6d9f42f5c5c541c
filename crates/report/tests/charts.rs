#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every chart kind renders from fixed data to a PNG of the expected size that is not blank, and
//! to an SVG.

use orchestra_report::charts::{Band, Bar, Chart, ChartSpec, Marker, Panel, render_chart};

fn band(label: &str, color: usize, f: impl Fn(f64) -> f64) -> Band {
    let x: Vec<f64> = (0..30).map(f64::from).collect();
    let mean: Vec<f64> = x.iter().map(|x| f(*x)).collect();
    Band {
        label: label.into(),
        color,
        dashed: false,
        dots: false,
        lo: mean.iter().map(|m| m - 0.05).collect(),
        hi: mean.iter().map(|m| m + 0.05).collect(),
        x,
        mean,
    }
}

fn charts() -> Vec<Chart> {
    let markers = vec![
        Marker {
            x: 10.0,
            label: "schema_change".into(),
        },
        Marker {
            x: 20.0,
            label: "outage_start".into(),
        },
    ];
    vec![
        Chart {
            stem: "panels_single".into(),
            title: "Emission share per strategy".into(),
            caption: String::new(),
            spec: ChartSpec::Panels {
                x_desc: "epoch (tempo index)".into(),
                panels: vec![Panel {
                    y_desc: "emission share (fraction)".into(),
                    y_range: None,
                    bands: vec![
                        band("honest", 0, |x| 0.6 + x / 100.0),
                        band("fabricator", 1, |x| 0.3 - x / 200.0),
                    ],
                    secondary: None,
                }],
                markers: markers.clone(),
            },
        },
        Chart {
            stem: "panels_stacked".into(),
            title: "Success rate and latency".into(),
            caption: String::new(),
            spec: ChartSpec::Panels {
                x_desc: "epoch (tempo index)".into(),
                panels: vec![
                    Panel {
                        y_desc: "success rate".into(),
                        y_range: Some((0.0, 1.0)),
                        bands: vec![band("success", 2, |_| 0.9)],
                        secondary: None,
                    },
                    Panel {
                        y_desc: "latency (ms)".into(),
                        y_range: None,
                        bands: vec![
                            band("p50", 0, |x| 200.0 + x),
                            Band {
                                dashed: true,
                                ..band("p95", 1, |x| 480.0 + 2.0 * x)
                            },
                        ],
                        secondary: Some((
                            "load (req/s)".into(),
                            band("load", 6, |x| 40.0 + (x / 4.0).sin() * 10.0),
                        )),
                    },
                ],
                markers,
            },
        },
        Chart {
            stem: "bars".into(),
            title: "ROI relative to honest".into(),
            caption: String::new(),
            spec: ChartSpec::Bars {
                y_desc: "ROI relative to honest (ratio)".into(),
                bars: vec![
                    Bar {
                        label: "honest".into(),
                        color: 0,
                        mean: 1.0,
                        lo: 0.95,
                        hi: 1.05,
                    },
                    Bar {
                        label: "fabricator".into(),
                        color: 1,
                        mean: 0.3,
                        lo: 0.1,
                        hi: 0.5,
                    },
                    Bar {
                        label: "sybil".into(),
                        color: 2,
                        mean: -0.2,
                        lo: -0.4,
                        hi: 0.0,
                    },
                ],
                reference: Some(("honest".into(), 1.0)),
            },
        },
        Chart {
            stem: "one_bar".into(),
            title: "A single strategy".into(),
            caption: String::new(),
            spec: ChartSpec::Bars {
                y_desc: "ROI relative to honest (ratio)".into(),
                bars: vec![Bar {
                    label: "honest".into(),
                    color: 0,
                    mean: 1.0,
                    lo: 0.9,
                    hi: 1.1,
                }],
                reference: None,
            },
        },
        Chart {
            stem: "lorenz".into(),
            title: "Lorenz curve".into(),
            caption: String::new(),
            spec: ChartSpec::Lorenz {
                amounts: (1..=50).map(|i| f64::from(i * i)).collect(),
                reported_gini: Some(0.4),
            },
        },
        Chart {
            stem: "heatmap".into(),
            title: "Honest share over s × audit".into(),
            caption: String::new(),
            spec: ChartSpec::Heatmap {
                x_desc: "s".into(),
                y_desc: "audit rate".into(),
                value_desc: "honest share".into(),
                xs: vec![0.3, 0.6, 0.9],
                ys: vec![0.05, 0.1],
                values: vec![
                    vec![Some(0.5), Some(0.6), None],
                    vec![Some(0.7), Some(0.8), Some(0.9)],
                ],
            },
        },
    ]
}

#[test]
fn every_chart_kind_renders_a_non_blank_png_and_an_svg() {
    let t = tempfile::tempdir().unwrap();
    for chart in charts() {
        let r = render_chart(&chart, t.path()).unwrap();
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(&r.png_path).unwrap(),
        ));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), chart.size(), "{}", chart.stem);
        let px = &buf[..info.buffer_size()];
        let step = info.color_type.samples();
        let non_white = px
            .chunks(step)
            .filter(|p| p.iter().take(3).any(|c| *c < 230))
            .count();
        let total = px.len() / step;
        assert!(
            non_white * 50 > total,
            "{}: only {non_white}/{total} non-white pixels",
            chart.stem
        );
        let colours: std::collections::BTreeSet<&[u8]> = px.chunks(step).collect();
        assert!(
            colours.len() > 20,
            "{}: {} colours",
            chart.stem,
            colours.len()
        );
        assert_eq!(r.png, std::fs::read(&r.png_path).unwrap());
        let svg = std::fs::read_to_string(&r.svg_path).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("sans-serif") && svg.contains(&chart.title),
            "{}",
            chart.stem
        );
    }
}

#[test]
fn empty_data_still_renders() {
    let t = tempfile::tempdir().unwrap();
    let chart = Chart {
        stem: "empty".into(),
        title: "Nothing".into(),
        caption: String::new(),
        spec: ChartSpec::Panels {
            x_desc: "epoch".into(),
            panels: vec![Panel::default()],
            markers: vec![],
        },
    };
    render_chart(&chart, t.path()).unwrap();
    let chart = Chart {
        stem: "empty_lorenz".into(),
        title: "x".into(),
        caption: String::new(),
        spec: ChartSpec::Lorenz {
            amounts: vec![],
            reported_gini: None,
        },
    };
    render_chart(&chart, t.path()).unwrap();
    // No emission at all: the Lorenz curve and the Gini are undefined, and the legend says so.
    let chart = Chart {
        stem: "no_emission_lorenz".into(),
        title: "x".into(),
        caption: String::new(),
        spec: ChartSpec::Lorenz {
            amounts: vec![0.0; 8],
            reported_gini: Some(f64::NAN),
        },
    };
    let r = render_chart(&chart, t.path()).unwrap();
    let svg = std::fs::read_to_string(&r.svg_path).unwrap();
    assert!(
        svg.contains("Lorenz curve undefined (no emission)") && !svg.contains("NaN"),
        "{svg}"
    );
}
