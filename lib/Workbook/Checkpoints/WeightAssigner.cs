using TorchSharp;
using Workbook.Model;
using static TorchSharp.torch;

namespace Workbook.Checkpoints;

/// <summary>
/// Copies tensors into a model's parameters by TransformerLens name, converting dtype and device,
/// checking shapes, and tracking which parameters are still unset.
/// </summary>
public sealed class WeightAssigner
{
    readonly Dictionary<string, TorchSharp.Modules.Parameter> _params;
    readonly HashSet<string> _unset;
    readonly string _source;

    public WeightAssigner(HookedTransformer model, string source)
    {
        _params = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        _unset = new HashSet<string>(_params.Keys, StringComparer.Ordinal);
        _source = source;
    }

    public IReadOnlyCollection<string> ParameterNames => _params.Keys;

    /// <summary>Copies <paramref name="value"/> into parameter <paramref name="tlName"/>; <paramref name="from"/> names the checkpoint tensor for messages.</summary>
    public void Assign(string tlName, Tensor value, string from)
    {
        if (!_params.TryGetValue(tlName, out var p))
            throw new CheckpointException($"{_source}: tensor '{from}' maps to '{tlName}', which this model does not have.");
        if (!p.shape.SequenceEqual(value.shape))
            throw new CheckpointException($"{_source}: tensor '{from}' has shape [{string.Join(", ", value.shape)}] but the config implies [{string.Join(", ", p.shape)}] for '{tlName}'.");
        if (!value.is_floating_point())
            throw new CheckpointException($"{_source}: tensor '{from}' has integer dtype {value.dtype}; weights must be floating point.");
        using (no_grad())
        {
            p.copy_(value); // converts dtype and device
        }
        _unset.Remove(tlName);
    }

    /// <summary>Sets a parameter the checkpoint does not store (for example a zero bias).</summary>
    public void Fill(string tlName, double value)
    {
        using (no_grad()) ShapeCheckedParam(tlName).fill_(value);
        _unset.Remove(tlName);
    }

    TorchSharp.Modules.Parameter ShapeCheckedParam(string tlName) => _params.TryGetValue(tlName, out var p)
        ? p
        : throw new CheckpointException($"{_source}: the model has no parameter '{tlName}'.");

    /// <summary>Throws if any parameter was never assigned, naming the checkpoint tensor it should come from.</summary>
    public void EnsureComplete(Func<string, string> expectedSource)
    {
        if (_unset.Count == 0) return;
        var missing = _unset.OrderBy(x => x, StringComparer.Ordinal).Select(expectedSource).ToList();
        throw new CheckpointException($"{_source}: missing tensor{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing.Take(6).Select(m => $"'{m}'"))}{(missing.Count > 6 ? $" and {missing.Count - 6} more" : "")}.");
    }
}
