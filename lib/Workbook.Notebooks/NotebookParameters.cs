using System.Globalization;
using System.Text.RegularExpressions;
using Workbook.Model;

namespace Workbook.Notebooks;

/// <summary>
/// Values that replace those of a notebook's parameters cell (the cell whose first line is
/// <see cref="NotebookRunner.ParametersMarker"/>) in a headless run: after that cell runs, the runner assigns the
/// given ones (<c>Device = "cuda";</c>), and the report shows what it set. Null leaves a value as the notebook has it.
/// From the command line: <c>--model</c>, <c>--device</c>, <c>--dtype</c>, <c>--prompts</c>, <c>--batch-size</c>, or the
/// variables <c>WORKBOOK_MODEL</c>, <c>WORKBOOK_DEVICE</c>, <c>WORKBOOK_DTYPE</c>, <c>WORKBOOK_PROMPTS</c>, <c>WORKBOOK_BATCH_SIZE</c>.
/// </summary>
public sealed record NotebookParameters(string? Model = null, string? Device = null, string? DType = null, int? Prompts = null, int? BatchSize = null)
{
    /// <summary>The environment variable for each parameter.</summary>
    public static readonly IReadOnlyDictionary<string, string> EnvironmentNames = new Dictionary<string, string>
    {
        ["Model"] = "WORKBOOK_MODEL", ["Device"] = "WORKBOOK_DEVICE", ["DType"] = "WORKBOOK_DTYPE", ["Prompts"] = "WORKBOOK_PROMPTS", ["BatchSize"] = "WORKBOOK_BATCH_SIZE",
    };

    public bool IsEmpty => this == new NotebookParameters();

    /// <summary>The values set in the environment (<paramref name="environment"/> reads a variable); a clear error for a malformed number.</summary>
    public static NotebookParameters FromEnvironment(Func<string, string?> environment)
    {
        string? Text(string name) => environment(EnvironmentNames[name]) is { Length: > 0 } v ? v.Trim() : null;
        int? Number(string name)
        {
            string? text = Text(name);
            if (text is null) return null;
            return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int v)
                ? v : throw new ArgumentException($"{EnvironmentNames[name]}='{text}' is not a whole number.");
        }
        return new NotebookParameters(Text("Model"), Text("Device"), Text("DType"), Number("Prompts"), Number("BatchSize"));
    }

    /// <summary>These values where set, else <paramref name="fallback"/>'s (flags over environment variables).</summary>
    public NotebookParameters Or(NotebookParameters fallback) =>
        new(Model ?? fallback.Model, Device ?? fallback.Device, DType ?? fallback.DType, Prompts ?? fallback.Prompts, BatchSize ?? fallback.BatchSize);

    /// <summary>Checks every value before anything runs: the device exists (CUDA is usable when asked for), the dtype is known and usable there, counts are positive.</summary>
    public void Validate()
    {
        if (Prompts is < 1) throw new ArgumentException($"Prompts must be at least 1 per dataset part, got {Prompts}.");
        if (BatchSize is < 1) throw new ArgumentException($"The batch size must be at least 1, got {BatchSize}.");
        var device = Devices.Parse(Device ?? "cpu");
        if (DType is not null) Precision.EnsureUsable(Precision.Parse(DType), device);
    }

    /// <summary>The parameters given, as (variable, C# value) pairs, in a fixed order.</summary>
    public IReadOnlyList<(string Name, string Code)> Assignments()
    {
        static string Literal(string s)
        {
            if (s.Any(c => char.IsControl(c))) throw new ArgumentException($"Parameter value '{s}' contains a control character.");
            return "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
        }
        var list = new List<(string, string)>();
        if (Model is not null) list.Add(("Model", Literal(Model)));
        if (Device is not null) list.Add(("Device", Literal(Device)));
        if (DType is not null) list.Add(("DType", Literal(DType)));
        if (Prompts is int p) list.Add(("Prompts", p.ToString(CultureInfo.InvariantCulture)));
        if (BatchSize is int b) list.Add(("BatchSize", b.ToString(CultureInfo.InvariantCulture)));
        return list;
    }

    /// <summary>Names given here that <paramref name="cellSource"/> (a parameters cell) does not assign.</summary>
    public IEnumerable<string> MissingFrom(string cellSource) =>
        Assignments().Select(a => a.Name).Where(n => !Regex.IsMatch(cellSource, $@"\b{n}\s*=(?!=)"));
}
