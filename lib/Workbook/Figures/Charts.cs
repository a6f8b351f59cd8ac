using System.Globalization;

namespace Workbook.Figures;

/// <summary>A horizontal line across a plot at <see cref="Y"/>, labelled at its right end (e.g. 100 % "Perfect faithfulness").</summary>
public sealed record ReferenceLine(double Y, string Label, string Dash = "dash", string Color = "#555555");

/// <summary>The values of one box: a category on the x axis.</summary>
public sealed record BoxGroup(string Category, IReadOnlyList<double> Values);

/// <summary>One colour of boxes: a value list per category.</summary>
public sealed record BoxSeries(string Name, IReadOnlyList<BoxGroup> Groups);

public sealed record BarPoint(string Category, double Value);

/// <summary>One colour of bars: a value per category.</summary>
public sealed record BarSeries(string Name, IReadOnlyList<BarPoint> Points);

/// <summary>A line over a swept parameter; <see cref="Step"/> draws it as a step curve ("hv").</summary>
public sealed record LineSeries(string Name, IReadOnlyList<double> X, IReadOnlyList<double> Y, bool Step = false, bool Markers = true);

/// <summary>One ROC curve: false- and true-positive rates (already in step order) and the area under the curve.</summary>
public sealed record RocLine(string Name, IReadOnlyList<double> FalsePositiveRate, IReadOnlyList<double> TruePositiveRate, double Area);

/// <summary>What every chart shares: titles, a clipped y range, reference lines, size.</summary>
public sealed record ChartOptions
{
    public string? Title { get; init; }
    public string? XTitle { get; init; }
    public string? YTitle { get; init; }
    /// <summary>
    /// The y clip [low, high]: when values fall outside it, the axis is fixed to it, the values are kept (box
    /// statistics stay exact) but not shown, and a note says how many; when every value lies inside, the axis fits the data.
    /// </summary>
    public (double Low, double High)? YRange { get; init; }
    public (double Low, double High)? XRange { get; init; }
    public IReadOnlyList<ReferenceLine> ReferenceLines { get; init; } = Array.Empty<ReferenceLine>();
    /// <summary>Box plots: draw every value as a point beside its box.</summary>
    public bool ShowPoints { get; init; } = true;
    public string? YTickSuffix { get; init; }
    public double Height { get; init; } = 480;
}

/// <summary>
/// Builders of plotly figures from plain values: box plots with their points, grouped bars, lines over a swept
/// parameter, step (ROC) curves, and a grid of up to four panels. The paper's figures
/// (<see cref="PaperFigures"/>) are built from these.
/// </summary>
public static class Charts
{
    /// <summary>A qualitative palette (colour-blind friendly, Okabe–Ito order); series keep their colour across panels.</summary>
    public static IReadOnlyList<string> Palette { get; } = new[] { "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000" };

    static string Colour(int i) => Palette[i % Palette.Count];

    public static Figure Box(IReadOnlyList<BoxSeries> series, ChartOptions options)
    {
        var traces = series.Select((s, i) => (Trace)new BoxTrace
        {
            Name = s.Name, LegendGroup = s.Name,
            X = s.Groups.SelectMany(g => g.Values.Where(double.IsFinite).Select(_ => g.Category)).ToArray(),
            Y = s.Groups.SelectMany(g => g.Values.Where(double.IsFinite)).ToArray(),
            BoxPoints = options.ShowPoints ? "all" : "outliers", Jitter = options.ShowPoints ? 0.4 : null, PointPos = options.ShowPoints ? 0 : null,
            Marker = new Marker { Color = Colour(i), Size = 3, Opacity = options.ShowPoints ? 0.5 : null },
        }).ToArray();
        var categories = series.SelectMany(s => s.Groups.Select(g => g.Category)).Distinct().ToArray();
        var values = series.SelectMany(s => s.Groups.SelectMany(g => g.Values)).ToArray();
        return new Figure(traces, BaseLayout(options, values, categories) with { BoxMode = series.Count > 1 ? "group" : null });
    }

    public static Figure Bars(IReadOnlyList<BarSeries> series, ChartOptions options, string valueFormat = "G3")
    {
        var traces = series.Select((s, i) => (Trace)new BarTrace
        {
            Name = s.Name, LegendGroup = s.Name,
            X = s.Points.Select(p => p.Category).ToArray(), Y = s.Points.Select(p => p.Value).ToArray(),
            Text = s.Points.Select(p => double.IsFinite(p.Value) ? p.Value.ToString(valueFormat, CultureInfo.InvariantCulture) : "n/a").ToArray(),
            TextPosition = "outside", Marker = new Marker { Color = Colour(i) },
        }).ToArray();
        var categories = series.SelectMany(s => s.Points.Select(p => p.Category)).Distinct().ToArray();
        return new Figure(traces, BaseLayout(options, series.SelectMany(s => s.Points.Select(p => p.Value)).ToArray(), categories) with
        {
            BarMode = series.Count > 1 ? "group" : null,
        });
    }

    public static Figure Lines(IReadOnlyList<LineSeries> series, ChartOptions options)
    {
        foreach (var s in series)
            if (s.X.Count != s.Y.Count)
                throw new ArgumentException($"Line '{s.Name}' has {s.X.Count} x values but {s.Y.Count} y values.");
        var traces = series.Select((s, i) => (Trace)new ScatterTrace
        {
            Name = s.Name, LegendGroup = s.Name, X = s.X, Y = s.Y,
            Mode = s.Markers ? "lines+markers" : "lines",
            Line = new Line { Color = Colour(i), Shape = s.Step ? "hv" : null, Width = 2 },
            Marker = new Marker { Color = Colour(i), Size = 6 },
        }).ToArray();
        var layout = BaseLayout(options, series.SelectMany(s => s.Y).ToArray(), null);
        return new Figure(traces, layout);
    }

    /// <summary>
    /// Step curves of (false-positive rate, true-positive rate) points, each labelled with its area, on [0, 1]²
    /// with the chance diagonal.
    /// </summary>
    public static Figure Roc(IReadOnlyList<RocLine> curves, ChartOptions? options = null)
    {
        options ??= new ChartOptions();
        options = options with
        {
            XTitle = options.XTitle ?? "False positive rate", YTitle = options.YTitle ?? "True positive rate",
            XRange = options.XRange ?? (-0.02, 1.02), YRange = options.YRange ?? (-0.02, 1.02), Height = options.Height,
        };
        var lines = curves.Select(c => new LineSeries($"{c.Name} (AUC {c.Area.ToString("F2", CultureInfo.InvariantCulture)})", c.FalsePositiveRate, c.TruePositiveRate, Step: true, Markers: false)).ToList();
        var figure = Lines(lines, options);
        var diagonal = new ScatterTrace
        {
            Name = "chance", X = new[] { 0.0, 1.0 }, Y = new[] { 0.0, 1.0 }, Mode = "lines", ShowLegend = false,
            Line = new Line { Color = "#bbbbbb", Dash = "dot", Width = 1 }, HoverTemplate = "chance<extra></extra>",
        };
        return figure with { Data = figure.Data.Prepend(diagonal).ToArray() };
    }

    /// <summary>
    /// Up to four single-panel figures side by side (or in <paramref name="columns"/> columns): each panel keeps its
    /// axes, reference lines and notes; its title becomes the panel's heading; a series shown in several panels has
    /// one legend entry.
    /// </summary>
    public static Figure Panels(string? title, IReadOnlyList<Figure> panels, int? columns = null, double? height = null)
    {
        if (panels.Count is 0 or > Layout.MaxSubplots)
            throw new ArgumentException($"A figure holds 1 to {Layout.MaxSubplots} panels, got {panels.Count}.");
        int cols = columns ?? panels.Count;
        int rows = (panels.Count + cols - 1) / cols;
        var traces = new List<Trace>();
        var shapes = new List<Shape>();
        var annotations = new List<Annotation>();
        var layout = new Layout
        {
            Title = title is null ? null : new Title(title), Grid = new Grid(rows, cols) { XGap = 0.12, YGap = 0.25 },
            Height = height ?? Math.Max(460, rows * 420), Legend = new Legend { Orientation = "h", Y = -0.2, YAnchor = "top" },
            Margin = new Margin(60, 30, title is null ? 50 : 90, 90),
        };
        var seen = new HashSet<string>();
        for (int k = 1; k <= panels.Count; k++)
        {
            var panel = panels[k - 1];
            string xName = k == 1 ? "x" : $"x{k}", yName = k == 1 ? "y" : $"y{k}";
            foreach (var t in panel.Data)
            {
                bool first = t.Name is null || t.ShowLegend == false || seen.Add(t.LegendGroup ?? t.Name);
                traces.Add(t with { XAxis = xName, YAxis = yName, ShowLegend = t.ShowLegend == false ? false : first ? null : false });
            }
            var (px, py) = panel.Layout.Axes(1);
            layout = layout.WithAxes(k, px, py);
            layout = layout with { BoxMode = layout.BoxMode ?? panel.Layout.BoxMode, BarMode = layout.BarMode ?? panel.Layout.BarMode };
            foreach (var s in panel.Layout.Shapes ?? Array.Empty<Shape>())
                shapes.Add(s with { XRef = Rename(s.XRef, "x", xName), YRef = Rename(s.YRef, "y", yName) });
            foreach (var a in panel.Layout.Annotations ?? Array.Empty<Annotation>())
                annotations.Add(a with { XRef = Rename(a.XRef, "x", xName), YRef = Rename(a.YRef, "y", yName) });
            if (panel.Layout.Title is { } heading)
                annotations.Add(new Annotation
                {
                    Text = $"<b>{heading.Text}</b>", XRef = $"{xName} domain", YRef = $"{yName} domain", X = 0.5, Y = 1.02,
                    XAnchor = "center", YAnchor = "bottom", ShowArrow = false, Font = new Font { Size = 13 },
                });
        }
        return new Figure(traces, layout with { Shapes = shapes, Annotations = annotations });
    }

    static string Rename(string reference, string axis, string name) =>
        reference == axis ? name : reference == $"{axis} domain" ? $"{name} domain" : reference;

    /// <summary>The layout every chart shares: titles, axes, reference lines and a note about values beyond the y range.</summary>
    static Layout BaseLayout(ChartOptions options, IReadOnlyList<double> values, IReadOnlyList<string>? categories)
    {
        var shapes = new List<Shape>();
        var annotations = new List<Annotation>();
        foreach (var r in options.ReferenceLines)
        {
            shapes.Add(new Shape
            {
                XRef = "x domain", YRef = "y", X0 = 0, X1 = 1, Y0 = r.Y, Y1 = r.Y, Layer = "below",
                Line = new Line { Color = r.Color, Dash = r.Dash, Width = 1.5 },
            });
            annotations.Add(new Annotation
            {
                Text = r.Label, XRef = "x domain", YRef = "y", X = 1, Y = r.Y, XAnchor = "right", YAnchor = "bottom",
                ShowArrow = false, Font = new Font { Size = 11, Color = r.Color },
            });
        }
        bool clipped = false;
        if (options.YRange is var (low, high))
        {
            int finite = values.Count(double.IsFinite);
            int below = values.Count(v => double.IsFinite(v) && v < low), above = values.Count(v => double.IsFinite(v) && v > high);
            clipped = below + above > 0;
            if (clipped)
                annotations.Add(new Annotation
                {
                    Text = OutsideNote(below, above, finite, low, high), XRef = "x domain", YRef = "y domain", X = 0, Y = 1,
                    XAnchor = "left", YAnchor = "top", ShowArrow = false, Font = new Font { Size = 10, Color = "#777777" },
                });
        }
        int nonFinite = values.Count(v => !double.IsFinite(v));
        if (nonFinite > 0)
            annotations.Add(new Annotation
            {
                Text = $"{nonFinite} undefined value(s) left out", XRef = "x domain", YRef = "y domain", X = 1, Y = 1,
                XAnchor = "right", YAnchor = "top", ShowArrow = false, Font = new Font { Size = 10, Color = "#777777" },
            });
        return new Layout
        {
            Title = options.Title is null ? null : new Title(options.Title),
            XAxis = new Axis
            {
                Title = options.XTitle is null ? null : new Title(options.XTitle),
                Range = options.XRange is var (xl, xh) ? new[] { xl, xh } : null,
                Type = categories is null ? null : "category",
                CategoryOrder = categories is null ? null : "array", CategoryArray = categories, AutoMargin = true,
            },
            YAxis = new Axis
            {
                Title = options.YTitle is null ? null : new Title(options.YTitle),
                Range = clipped && options.YRange is var (yl, yh) ? new[] { yl, yh } : null,
                TickSuffix = options.YTickSuffix, ZeroLine = true, AutoMargin = true,
            },
            Shapes = shapes.Count > 0 ? shapes : null,
            Annotations = annotations.Count > 0 ? annotations : null,
            Height = options.Height,
            Legend = new Legend { Orientation = "h", Y = -0.22, YAnchor = "top" },
        };
    }

    /// <summary>"12 of 3000 points beyond [-700, 700] are not shown (5 below, 7 above)".</summary>
    public static string OutsideNote(int below, int above, int total, double low, double high)
    {
        string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
        return $"{below + above} of {total} values beyond [{F(low)}, {F(high)}] not shown ({below} below, {above} above)";
    }
}
