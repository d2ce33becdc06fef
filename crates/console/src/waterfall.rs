//! The geometry of a waterfall of match weights, drawn as an inline SVG on the
//! explain page: the prior weight as a bar from zero, then each comparison's
//! weight as a bar up (evidence for) or down (evidence against) from the
//! running total, then the total as a bar from zero. Pure arithmetic; the
//! template only places what this computes.

/// One step of the waterfall, as the caller knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub label: String,
    /// The comparison level (`exact`, `jw_0.92`), or `None` when a value is missing.
    pub level: Option<String>,
    pub weight: f64,
}

/// What a bar stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarKind {
    Prior,
    Comparison,
    Total,
}

impl BarKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BarKind::Prior => "prior",
            BarKind::Comparison => "comparison",
            BarKind::Total => "total",
        }
    }
}

/// One bar, in SVG user units (y grows downwards).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub kind: BarKind,
    pub label: String,
    /// Written at the bar: `+3.21`, `−1.05`, or `—` when a value is missing.
    pub value: String,
    /// The bar's tooltip: `given_name nickname: +5.91`, `email: missing`.
    pub note: String,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub fill: &'static str,
    /// The bar's centre, for its labels.
    pub cx: f64,
    /// Where the value is written: above a bar that rises, below one that falls.
    pub value_y: f64,
    /// Where the rotated label below the plot starts.
    pub label_y: f64,
    /// The dashed line from this bar's end to the next bar: (x1, x2, y).
    pub connector: Option<(f64, f64, f64)>,
}

/// A horizontal line with a label at the left (axis ticks, the link threshold).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub y: f64,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Waterfall {
    pub width: f64,
    pub height: f64,
    pub plot_left: f64,
    pub plot_right: f64,
    /// Where the axis labels end (right-aligned, left of the plot).
    pub axis_x: f64,
    /// Where weight zero is.
    pub zero_y: f64,
    pub bars: Vec<Bar>,
    pub ticks: Vec<Rule>,
    pub threshold: Option<Rule>,
    /// The running total after every step, ending with the total.
    pub totals: Vec<f64>,
}

pub const GOOD: &str = "#1d6b36";
pub const BAD: &str = "#a4161a";
pub const NEUTRAL: &str = "#0b5cad";
pub const MISSING: &str = "#8c96a0";

const TOP: f64 = 28.0;
const PLOT_HEIGHT: f64 = 240.0;
const LABEL_SPACE: f64 = 84.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 16.0;
const PITCH: f64 = 54.0;
const BAR: f64 = 34.0;

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// A weight for people: signed, two decimals, with a real minus sign.
pub fn signed(w: f64) -> String {
    let s = format!("{:+.2}", w);
    s.replacen('-', "\u{2212}", 1)
}

/// A step between axis ticks that gives about five of them.
fn tick_step(span: f64) -> f64 {
    let raw = span / 5.0;
    let mut step = 1.0;
    for s in [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0] {
        step = s;
        if s >= raw {
            break;
        }
    }
    step
}

/// Lays out the waterfall of `prior` and `steps`; `threshold` is the weight
/// at which the model links, drawn as a dashed line when given.
pub fn layout(prior: f64, steps: &[Step], threshold: Option<f64>) -> Waterfall {
    let mut totals = vec![prior];
    let mut running = prior;
    for s in steps {
        running += s.weight;
        totals.push(running);
    }
    let total = running;
    let mut lo = 0.0f64;
    let mut hi = 0.0f64;
    for v in totals.iter().copied().chain(threshold) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi - lo < 2.0 {
        hi += 1.0;
        lo -= 1.0;
    }
    let pad = (hi - lo) * 0.06;
    let (lo, hi) = (lo - pad, hi + pad);
    let y = |v: f64| TOP + (hi - v) / (hi - lo) * PLOT_HEIGHT;

    let n = steps.len() + 2;
    let width = LEFT + PITCH * n as f64 + RIGHT;
    let height = TOP + PLOT_HEIGHT + LABEL_SPACE;
    let zero_y = round(y(0.0));
    let mut bars = Vec::with_capacity(n);
    let mut bar = |i: usize,
                   kind: BarKind,
                   label: String,
                   text: (String, String),
                   from: f64,
                   to: f64,
                   fill| {
        let (value, note) = text;
        let x = LEFT + PITCH * i as f64 + (PITCH - BAR) / 2.0;
        let (top, bottom) = (y(from.max(to)), y(from.min(to)));
        // A zero weight still gets a hairline, so every step is visible.
        let height = (bottom - top).max(1.0);
        let rises = to >= from;
        bars.push(Bar {
            kind,
            label,
            value,
            note,
            x: round(x),
            y: round(top),
            width: BAR,
            height: round(height),
            fill,
            cx: round(x + BAR / 2.0),
            value_y: round(if rises {
                top - 5.0
            } else {
                top + height + 13.0
            }),
            label_y: round(TOP + PLOT_HEIGHT + 14.0),
            connector: None,
        });
    };
    bar(
        0,
        BarKind::Prior,
        "prior".into(),
        (signed(prior), format!("prior: {}", signed(prior))),
        0.0,
        prior,
        NEUTRAL,
    );
    let mut from = prior;
    for (i, s) in steps.iter().enumerate() {
        let to = from + s.weight;
        let fill = match (&s.level, s.weight) {
            (None, _) => MISSING,
            (Some(_), w) if w > 0.0 => GOOD,
            (Some(_), w) if w < 0.0 => BAD,
            _ => MISSING,
        };
        let text = match &s.level {
            None => ("\u{2014}".to_string(), format!("{}: missing", s.label)),
            Some(level) => (
                signed(s.weight),
                format!("{} {level}: {}", s.label, signed(s.weight)),
            ),
        };
        bar(
            i + 1,
            BarKind::Comparison,
            s.label.clone(),
            text,
            from,
            to,
            fill,
        );
        from = to;
    }
    bar(
        n - 1,
        BarKind::Total,
        "total".into(),
        (signed(total), format!("total: {}", signed(total))),
        0.0,
        total,
        NEUTRAL,
    );
    // Connectors run at the running total from one bar to the next.
    for i in 0..n - 1 {
        let level = totals[i.min(totals.len() - 1)];
        let x1 = bars[i].x + BAR;
        let x2 = bars[i + 1].x;
        bars[i].connector = Some((round(x1), round(x2), round(y(level))));
    }

    let step = tick_step(hi - lo);
    let mut ticks = Vec::new();
    let mut t = (lo / step).ceil() * step;
    while t <= hi {
        ticks.push(Rule {
            y: round(y(t)),
            label: if t == 0.0 {
                "0".into()
            } else {
                format!("{t:+}").replacen('-', "\u{2212}", 1)
            },
        });
        t += step;
    }
    Waterfall {
        width,
        height,
        plot_left: LEFT,
        plot_right: width - RIGHT,
        axis_x: LEFT - 6.0,
        zero_y,
        bars,
        ticks,
        threshold: threshold.map(|w| Rule {
            y: round(y(w)),
            label: format!("link threshold {}", signed(w)),
        }),
        totals,
    }
}

/// The weight at which a match probability is reached: `log2(p / (1 − p))`.
pub fn weight_of(probability: f64) -> Option<f64> {
    (probability > 0.0 && probability < 1.0).then(|| (probability / (1.0 - probability)).log2())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(label: &str, level: Option<&str>, weight: f64) -> Step {
        Step {
            label: label.into(),
            level: level.map(str::to_string),
            weight,
        }
    }

    fn steps() -> Vec<Step> {
        vec![
            step("given_name", Some("exact"), 6.0),
            step("family_name", Some("else"), -4.0),
            step("email", None, 0.0),
            step("phone", Some("exact"), 10.0),
        ]
    }

    #[test]
    fn one_bar_per_step_plus_prior_and_total() {
        let w = layout(-8.0, &steps(), None);
        assert_eq!(w.bars.len(), 6);
        assert_eq!(w.bars[0].kind, BarKind::Prior);
        assert_eq!(w.bars[5].kind, BarKind::Total);
        assert_eq!(
            w.bars
                .iter()
                .filter(|b| b.kind == BarKind::Comparison)
                .count(),
            4
        );
        assert_eq!(w.totals, vec![-8.0, -2.0, -6.0, -6.0, 4.0]);
        // Bars march left to right without overlapping.
        for pair in w.bars.windows(2) {
            assert!(pair[0].x + pair[0].width < pair[1].x, "{pair:?}");
        }
        assert!(w.bars.last().unwrap().x + BAR <= w.plot_right);
    }

    #[test]
    fn bars_rise_for_evidence_for_and_fall_for_evidence_against() {
        let w = layout(-8.0, &steps(), None);
        let scale = w.bars[0].height / 8.0; // the prior bar is 8 weights tall
        // The prior hangs down from zero.
        assert!((w.bars[0].y - w.zero_y).abs() < 0.11);
        // given_name +6: from -8 up to -2, so its top is 2 weights below zero.
        let g = &w.bars[1];
        assert!((g.height - 6.0 * scale).abs() < 0.3, "{g:?}");
        assert!((g.y - (w.zero_y + 2.0 * scale)).abs() < 0.3, "{g:?}");
        assert_eq!((g.fill, g.value.as_str()), (GOOD, "+6.00"));
        assert!(g.value_y < g.y, "a rising bar's value is above it");
        // family_name −4: from −2 down to −6.
        let f = &w.bars[2];
        assert!((f.y - (w.zero_y + 2.0 * scale)).abs() < 0.3, "{f:?}");
        assert!((f.height - 4.0 * scale).abs() < 0.3, "{f:?}");
        assert_eq!((f.fill, f.value.as_str()), (BAD, "\u{2212}4.00"));
        assert!(
            f.value_y > f.y + f.height,
            "a falling bar's value is below it"
        );
        // A missing value is a grey hairline at the running total.
        let e = &w.bars[3];
        assert_eq!(
            (e.fill, e.value.as_str(), e.height),
            (MISSING, "\u{2014}", 1.0)
        );
        assert_eq!(e.note, "email: missing");
        assert_eq!(g.note, "given_name exact: +6.00");
        // The total rises from zero to +4.
        let t = &w.bars[5];
        assert!((t.y + t.height - w.zero_y).abs() < 0.11, "{t:?}");
        assert!((t.height - 4.0 * scale).abs() < 0.3, "{t:?}");
        // Each connector sits at the running total after its bar.
        let (_, _, cy) = w.bars[1].connector.unwrap();
        assert!((cy - (w.zero_y + 2.0 * scale)).abs() < 0.3);
        assert!(w.bars[5].connector.is_none());
    }

    #[test]
    fn the_plot_holds_every_total_and_the_threshold() {
        let w = layout(-8.0, &steps(), Some(20.0));
        let th = w.threshold.as_ref().unwrap();
        assert!(th.y >= TOP && th.y < w.zero_y, "{th:?}");
        for b in &w.bars {
            assert!(
                b.y >= TOP - 0.1 && b.y + b.height <= TOP + PLOT_HEIGHT + 1.1,
                "{b:?}"
            );
        }
        assert!(
            w.ticks
                .iter()
                .any(|t| t.label == "0" && (t.y - w.zero_y).abs() < 0.11)
        );
        assert!(w.ticks.len() >= 3 && w.ticks.len() <= 12, "{:?}", w.ticks);
        // Ticks go down the page as weights fall.
        for pair in w.ticks.windows(2) {
            assert!(pair[0].y > pair[1].y);
        }
    }

    #[test]
    fn weights_of_probabilities_and_signs() {
        assert!((weight_of(0.5).unwrap()).abs() < 1e-12);
        assert!((weight_of(0.8).unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(weight_of(1.0), None);
        assert_eq!(signed(-1.5), "\u{2212}1.50");
        assert_eq!(signed(0.0), "+0.00");
        // An all-zero explanation still has a plot with room.
        let w = layout(0.0, &[step("email", None, 0.0)], None);
        assert!(w.zero_y > TOP && w.zero_y < TOP + PLOT_HEIGHT);
    }
}
