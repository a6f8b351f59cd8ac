using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Workbook.Cli.Commands;

/// <summary>Options shared by several verbs, so that they are spelt and described the same way everywhere.</summary>
public static class CommonOptions
{
    public static Option<string> Model() => new("--model", "-m")
    {
        Description = "Model: a checkpoint folder, an embedded model alias, or a hub alias/id.",
        Required = true,
    };

    public static Option<string> Device() => new("--device")
    {
        Description = "Compute device: cpu, cuda or cuda:N.",
        DefaultValueFactory = _ => "cpu",
    };

    public static Option<bool> AllowTf32() => new("--allow-tf32")
    {
        Description = "Let float32 matmuls on CUDA use TF32 tensor cores (faster, less precise). Off by default.",
    };

    public static Option<bool> Json() => new("--json") { Description = "Write machine-readable JSON to stdout." };

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = false,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public static void WriteJson<T>(TextWriter output, T value) => output.WriteLine(JsonSerializer.Serialize(value, JsonOptions));
}
