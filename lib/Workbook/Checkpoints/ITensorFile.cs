using static TorchSharp.torch;

namespace Workbook.Checkpoints;

/// <summary>A stored tensor's name, dtype (safetensors spelling: F32, F16, BF16, ...) and shape.</summary>
public sealed record StoredTensor(string Name, string DType, long[] Shape);

/// <summary>A file of named tensors (safetensors, or a PyTorch <c>torch.save</c> state dict) read one tensor at a time.</summary>
public interface ITensorFile : IDisposable
{
    string Path { get; }
    IReadOnlyDictionary<string, StoredTensor> Entries { get; }
    /// <summary>
    /// How many values the file's bytes hold: tensors that view one storage count it once. A model that needs more
    /// values than this cannot have come from the file (it would be the same few stored values repeated).
    /// </summary>
    double StoredValues { get; }
    /// <summary>Reads one tensor into a new CPU tensor of its stored dtype; the caller owns it.</summary>
    Tensor Read(string name);
}
