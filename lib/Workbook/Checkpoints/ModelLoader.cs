using TorchSharp;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Checkpoints;

/// <summary>Options for loading a model.</summary>
public sealed record LoadOptions
{
    /// <summary>Compute device: "cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>Parameter dtype; checkpoints stored as float16/bfloat16 are converted tensor by tensor.</summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;
}

/// <summary>Loads a checkpoint folder into a <see cref="HookedTransformer"/>.</summary>
public static class ModelLoader
{
    public static HookedTransformer Load(string folder, LoadOptions? options = null)
    {
        options ??= new LoadOptions();
        if (Embedded.EmbeddedModels.TryLoad(folder, Devices.Parse(options.Device), out var embedded, options.DType)) return embedded!;
        if (!Directory.Exists(folder)) throw new CheckpointException($"Model folder '{folder}' does not exist.");
        var device = Devices.Parse(options.Device);
        string configPath = Path.Combine(folder, "config.json");
        var config = ConfigJson.Load(configPath);
        if (HuggingFaceCheckpoint.Recognises(config))
            return HuggingFaceCheckpoint.Load(folder, config, device, options.DType);
        throw new CheckpointException($"{configPath}: unrecognised model (expected a HuggingFace gpt2 or gpt_neox config).");
    }
}
