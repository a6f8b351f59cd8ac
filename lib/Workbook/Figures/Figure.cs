using System.Text.Json;
using System.Text.Json.Serialization;

namespace Workbook.Figures;

/// <summary>
/// A figure as plotly.js describes one: traces and a layout, serialized to plotly's JSON by System.Text.Json
/// (<see cref="ToJson"/>). The notebook formatter, the HTML report and the PNG export all render this one
/// description (<see cref="FigureHtml"/>). Non-finite values become JSON null, which plotly draws as a gap.
/// </summary>
public sealed record Figure(IReadOnlyList<Trace> Data, Layout Layout)
{
    public string ToJson(bool indented = false) => JsonSerializer.Serialize(this, indented ? FigureJson.Indented : FigureJson.Options);

    public static Figure FromJson(string json, string source = "figure") => Util.JsonInput.Deserialize<Figure>(json, source, FigureJson.Options);

    /// <summary>An HTML fragment that draws the figure where plotly.js is (or will be) loaded; see <see cref="FigureHtml.Fragment"/>.</summary>
    public string ToHtml() => FigureHtml.Fragment(this);
}

/// <summary>The serializer settings of figure JSON: plotly's lower-case names, nulls omitted.</summary>
public static class FigureJson
{
    public static JsonSerializerOptions Options { get; } = Create(false);
    public static JsonSerializerOptions Indented { get; } = Create(true);

    static JsonSerializerOptions Create(bool indented) => new()
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = indented,
        Converters = { new FiniteOrNullConverter() },
    };

    /// <summary>Writes NaN and ±∞ as null (plotly's "no value"); reads null back as NaN.</summary>
    sealed class FiniteOrNullConverter : JsonConverter<double>
    {
        public override bool HandleNull => true;
        public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
        {
            if (double.IsFinite(value)) writer.WriteNumberValue(value);
            else writer.WriteNullValue();
        }
    }
}

/// <summary>One plotly trace; <c>type</c> is written first ("box", "bar", "scatter").</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(BoxTrace), "box")]
[JsonDerivedType(typeof(BarTrace), "bar")]
[JsonDerivedType(typeof(ScatterTrace), "scatter")]
public abstract record Trace
{
    public string? Name { get; init; }
    /// <summary>The x axis of the trace's subplot: "x" (default), "x2", ...</summary>
    [JsonPropertyName("xaxis")] public string? XAxis { get; init; }
    [JsonPropertyName("yaxis")] public string? YAxis { get; init; }
    /// <summary>Traces of one legend group toggle together; the same series across subplots shares one.</summary>
    [JsonPropertyName("legendgroup")] public string? LegendGroup { get; init; }
    [JsonPropertyName("showlegend")] public bool? ShowLegend { get; init; }
    public Marker? Marker { get; init; }
    [JsonPropertyName("hovertemplate")] public string? HoverTemplate { get; init; }
}

/// <summary>
/// A box per x category computed by plotly from the raw values (so quartiles are exact); with
/// <see cref="BoxPoints"/> "all" every value is also drawn as a jittered point beside its box.
/// </summary>
public sealed record BoxTrace : Trace
{
    public required IReadOnlyList<string> X { get; init; }
    public required IReadOnlyList<double> Y { get; init; }
    /// <summary>"all", "outliers", "suspectedoutliers"; null: plotly's default (outliers).</summary>
    [JsonPropertyName("boxpoints")] public string? BoxPoints { get; init; }
    public double? Jitter { get; init; }
    [JsonPropertyName("pointpos")] public double? PointPos { get; init; }
    [JsonPropertyName("boxmean")] public bool? BoxMean { get; init; }
}

public sealed record BarTrace : Trace
{
    public required IReadOnlyList<string> X { get; init; }
    public required IReadOnlyList<double> Y { get; init; }
    /// <summary>Labels drawn on the bars.</summary>
    public IReadOnlyList<string>? Text { get; init; }
    [JsonPropertyName("textposition")] public string? TextPosition { get; init; }
}

/// <summary>Lines and/or markers; <see cref="Line"/>.Shape "hv" draws a step curve (ROC).</summary>
public sealed record ScatterTrace : Trace
{
    public required IReadOnlyList<double> X { get; init; }
    public required IReadOnlyList<double> Y { get; init; }
    /// <summary>"lines", "markers", "lines+markers".</summary>
    public string? Mode { get; init; }
    public Line? Line { get; init; }
    public IReadOnlyList<string>? Text { get; init; }
}

public sealed record Marker
{
    public string? Color { get; init; }
    public double? Size { get; init; }
    public double? Opacity { get; init; }
}

public sealed record Line
{
    public string? Color { get; init; }
    public double? Width { get; init; }
    /// <summary>"solid", "dash", "dot", "dashdot".</summary>
    public string? Dash { get; init; }
    /// <summary>"linear" or "hv" (horizontal then vertical: a step curve).</summary>
    public string? Shape { get; init; }
}

public sealed record Title(string Text);

/// <summary>A plotly axis. Setting <see cref="Range"/> fixes (clips) the visible range.</summary>
public sealed record Axis
{
    public Title? Title { get; init; }
    /// <summary>[low, high]: values outside are not shown (the figure builders say how many).</summary>
    public IReadOnlyList<double>? Range { get; init; }
    /// <summary>"linear", "log", "category".</summary>
    public string? Type { get; init; }
    [JsonPropertyName("zeroline")] public bool? ZeroLine { get; init; }
    [JsonPropertyName("ticksuffix")] public string? TickSuffix { get; init; }
    /// <summary>Category order for category axes ("array" with <see cref="CategoryArray"/>).</summary>
    [JsonPropertyName("categoryorder")] public string? CategoryOrder { get; init; }
    [JsonPropertyName("categoryarray")] public IReadOnlyList<string>? CategoryArray { get; init; }
    /// <summary>Tick values for numeric axes (e.g. the batch sizes of a sweep).</summary>
    [JsonPropertyName("tickvals")] public IReadOnlyList<double>? TickValues { get; init; }
    [JsonPropertyName("automargin")] public bool? AutoMargin { get; init; }
}

/// <summary>A layout shape; the figure builders use horizontal lines across a subplot (reference lines).</summary>
public sealed record Shape
{
    public string Type { get; init; } = "line";
    /// <summary>"x domain" (0..1 across the subplot), "x", "paper"; "x2 domain" for the second subplot.</summary>
    [JsonPropertyName("xref")] public required string XRef { get; init; }
    [JsonPropertyName("yref")] public required string YRef { get; init; }
    public required double X0 { get; init; }
    public required double X1 { get; init; }
    public required double Y0 { get; init; }
    public required double Y1 { get; init; }
    public Line? Line { get; init; }
    /// <summary>"above" or "below" the traces.</summary>
    public string? Layer { get; init; }
}

public sealed record Font
{
    public double? Size { get; init; }
    public string? Color { get; init; }
}

public sealed record Annotation
{
    public required string Text { get; init; }
    [JsonPropertyName("xref")] public required string XRef { get; init; }
    [JsonPropertyName("yref")] public required string YRef { get; init; }
    public required double X { get; init; }
    public required double Y { get; init; }
    [JsonPropertyName("xanchor")] public string? XAnchor { get; init; }
    [JsonPropertyName("yanchor")] public string? YAnchor { get; init; }
    [JsonPropertyName("showarrow")] public bool ShowArrow { get; init; }
    public Font? Font { get; init; }
}

public sealed record Legend
{
    /// <summary>"v" or "h".</summary>
    public string? Orientation { get; init; }
    public double? X { get; init; }
    public double? Y { get; init; }
    [JsonPropertyName("xanchor")] public string? XAnchor { get; init; }
    [JsonPropertyName("yanchor")] public string? YAnchor { get; init; }
    public Title? Title { get; init; }
}

/// <summary>Subplots in a grid; trace i of subplot k refers to axes "x{k}"/"y{k}".</summary>
public sealed record Grid(int Rows, int Columns, string Pattern = "independent")
{
    [JsonPropertyName("xgap")] public double? XGap { get; init; }
    [JsonPropertyName("ygap")] public double? YGap { get; init; }
}

public sealed record Margin(double L, double R, double T, double B);

/// <summary>
/// A plotly layout. Up to four subplots have their own axes (<c>xaxis</c>..<c>xaxis4</c>); more panels belong in
/// separate figures.
/// </summary>
public sealed record Layout
{
    public const int MaxSubplots = 4;

    public Title? Title { get; init; }
    [JsonPropertyName("xaxis")] public Axis? XAxis { get; init; }
    [JsonPropertyName("yaxis")] public Axis? YAxis { get; init; }
    [JsonPropertyName("xaxis2")] public Axis? XAxis2 { get; init; }
    [JsonPropertyName("yaxis2")] public Axis? YAxis2 { get; init; }
    [JsonPropertyName("xaxis3")] public Axis? XAxis3 { get; init; }
    [JsonPropertyName("yaxis3")] public Axis? YAxis3 { get; init; }
    [JsonPropertyName("xaxis4")] public Axis? XAxis4 { get; init; }
    [JsonPropertyName("yaxis4")] public Axis? YAxis4 { get; init; }
    /// <summary>"group" places the boxes of several traces side by side per category.</summary>
    [JsonPropertyName("boxmode")] public string? BoxMode { get; init; }
    [JsonPropertyName("barmode")] public string? BarMode { get; init; }
    public IReadOnlyList<Shape>? Shapes { get; init; }
    public IReadOnlyList<Annotation>? Annotations { get; init; }
    public Legend? Legend { get; init; }
    public Grid? Grid { get; init; }
    public double? Height { get; init; }
    public double? Width { get; init; }
    public Margin? Margin { get; init; }
    [JsonPropertyName("showlegend")] public bool? ShowLegend { get; init; }

    /// <summary>The x and y axes of subplot <paramref name="index"/> (1-based).</summary>
    public (Axis? X, Axis? Y) Axes(int index) => index switch
    {
        1 => (XAxis, YAxis),
        2 => (XAxis2, YAxis2),
        3 => (XAxis3, YAxis3),
        4 => (XAxis4, YAxis4),
        _ => throw new ArgumentOutOfRangeException(nameof(index), $"A layout has subplots 1..{MaxSubplots}, not {index}."),
    };

    /// <summary>This layout with the axes of subplot <paramref name="index"/> (1-based) replaced.</summary>
    public Layout WithAxes(int index, Axis? x, Axis? y) => index switch
    {
        1 => this with { XAxis = x, YAxis = y },
        2 => this with { XAxis2 = x, YAxis2 = y },
        3 => this with { XAxis3 = x, YAxis3 = y },
        4 => this with { XAxis4 = x, YAxis4 = y },
        _ => throw new ArgumentOutOfRangeException(nameof(index), $"A layout has subplots 1..{MaxSubplots}, not {index}."),
    };
}
