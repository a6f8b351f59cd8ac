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
        Description = "Compute device: cpu, cuda, cuda:N, or auto (CUDA when available, else the CPU).",
        DefaultValueFactory = _ => "cpu",
    };

    public static Option<bool> AllowTf32() => new("--allow-tf32")
    {
        Description = "Let float32 matmuls on CUDA use TF32 tensor cores (faster, less precise). Off by default.",
    };

    public static Option<bool> Json() => new("--json") { Description = "Write machine-readable JSON to stdout." };

    public static Option<bool> Offline() => new("--offline")
    {
        Description = "Use the hub cache only, never the network (same as HF_HUB_OFFLINE=1); a missing file is an error naming it.",
    };

    public static Option<string> DType() => new("--dtype")
    {
        Description = "Parameter dtype: float32 (reference), float16 or bfloat16 (half the memory, less accurate; see README).",
        DefaultValueFactory = _ => "float32",
    };

    public static TorchSharp.torch.ScalarType ParseDType(string text)
    {
        try
        {
            return Workbook.Model.Precision.Parse(text);
        }
        catch (ArgumentException)
        {
            throw new ArgumentException($"--dtype '{text}' is not one of {Workbook.Model.Precision.Names}.");
        }
    }

    /// <summary>
    /// Load options for <c>--model</c>: device, dtype, and hub settings from the environment (HF_ENDPOINT, HF_TOKEN,
    /// HF_HUB_CACHE / HF_HOME, HF_HUB_OFFLINE) with <c>--offline</c>, and a progress bar on stderr when downloading.
    /// </summary>
    public static Checkpoints.LoadOptions LoadOptions(ParseResult parse, Option<string> device, Option<string>? dtype = null, Option<bool>? offline = null)
    {
        var hub = Hub.HubOptions.FromEnvironment();
        hub = hub with
        {
            Offline = hub.Offline || (offline != null && parse.GetValue(offline)),
            Progress = ConsoleProgress.ForTerminal(parse.InvocationConfiguration.Error, quiet: false),
        };
        return new Checkpoints.LoadOptions
        {
            Device = parse.GetValue(device)!,
            DType = dtype == null ? TorchSharp.torch.ScalarType.Float32 : ParseDType(parse.GetValue(dtype)!),
            Hub = hub,
        };
    }

    /// <summary>One line on stderr when <paramref name="spec"/> is a random-weights stand-in, so no output of it is taken for the real model's.</summary>
    public static void NoteRandomWeights(string spec, Checkpoints.LoadOptions options, TextWriter error)
    {
        var source = Checkpoints.ModelLoader.Locate(spec, options);
        if (source.Folder is { } folder && Checkpoints.RandomWeightsInfo.Read(folder) is { } info)
            error.WriteLine($"note: '{source.DisplayName}' is {info}.");
    }

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = false,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public static void WriteJson<T>(TextWriter output, T value) => output.WriteLine(JsonSerializer.Serialize(value, JsonOptions));
}
